"""A token stream read in passes notices an input that changes between them (its identity at
every read, a checksum of the tokens across passes): the build is refused, nothing written."""
import os

import numpy as np
import pytest

import ngramds
import ngramds.progress


@pytest.mark.parametrize("how", ["rewritten", "replaced", "same size and mtime"])
@pytest.mark.parametrize("stage", ["sorting runs", "merging"])
def test_an_input_changed_during_a_bounded_build_is_refused(token_dir, monkeypatch, how,
                                                             stage):
    d = token_dir
    src = d / "a.npy"
    original = np.load(src)
    step = ngramds.progress.Progress.step

    def change(self, name):
        if name == stage:
            other = original.copy()
            other[100:200] = (other[100:200] + 1) % 300
            st = os.stat(src)
            if how == "replaced":
                np.save(d / "new.npy", other)
                os.replace(d / "new.npy", src)
            else:
                with open(src, "r+b") as f:  # in place, same size
                    f.seek(st.st_size - other.nbytes)
                    f.write(other.tobytes())
                if how == "same size and mtime":
                    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
        return step(self, name)

    monkeypatch.setattr(ngramds.progress.Progress, "step", change)
    with pytest.raises(ngramds.NgramdsError, match="changed"):
        ngramds.build([str(src)], d / "o.ngds", order=3, memory_limit="4G", progress=True)
    assert not (d / "o.ngds").exists()
    assert sorted(p.name for p in d.iterdir()) == ["a.npy"]
