"""Run under torchrun by test_distributed.py: every loader setting, two epochs, on each rank.

python -m torch.distributed.run --standalone --nproc_per_node=2 ddp_script.py FILE OUT MODE
MODE "matrix": rank-local indices per (start method, persistent, workers, epoch) and the
loader's len; "stop": train 3 batches, save rank 0's loader state; "resume": load it and
finish the epoch. Results go to OUT/<mode>.rank<r>.json.
"""
import json
import sys

import torch
import torch.distributed as dist

from ngramds.torch import NgramDataset, NgramLoader

SEQ, BS = 8, 4


def loader(path, **kw):
    ds = NgramDataset(path, SEQ, seed=3, drop_last=kw.pop("drop_last", True))
    return NgramLoader(ds, batch_size=BS, **kw)


def main(path, out, mode):
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    result = {}
    if mode == "matrix":
        settings = [("none", False, 0)] + [(m, p, 2) for m in ("fork", "spawn", "forkserver")
                                           for p in (False, True)]
        for method, persistent, workers in settings:
            kw = dict(num_workers=workers, persistent_workers=persistent)
            if workers:
                kw["multiprocessing_context"] = method
            ld = loader(path, **kw)
            epochs = []
            for _ in range(2):  # no set_epoch: every pass is the next epoch
                epochs.append([i for b in ld for i in b["index"].tolist()])
            result[f"{method}-{persistent}-{workers}"] = {"len": len(ld), "epochs": epochs}
        ld = loader(path, drop_last=False)  # even batch counts: a collective per batch
        steps = 0
        for _ in ld:
            dist.all_reduce(torch.ones(1))  # hangs if ranks disagree on the batch count
            steps += 1
        result["drop_last_false"] = {"len": len(ld), "steps": steps}
    elif mode == "stop":
        ld = loader(path, num_workers=2)
        seen = []
        for step, batch in enumerate(ld, 1):
            seen += batch["index"].tolist()
            if step == 3:
                break
        result = {"seen": seen, "state": ld.state_dict()}
    else:
        with open(f"{out}/stop.rank0.json") as f:
            state = json.load(f)["state"]
        ld = loader(path, num_workers=2, multiprocessing_context="spawn")
        ld.load_state_dict(state)
        result = {"seen": [i for b in ld for i in b["index"].tolist()]}
    with open(f"{out}/{mode}.rank{rank}.json", "w") as f:
        json.dump(result, f)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:])
