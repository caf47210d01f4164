"""Regenerate the tables of issue 13's and issue 24's cases in docs/ROBUSTNESS.md from the tests.

    python tools/robustness_table.py                   # run the tests, rewrite the table
    python tools/robustness_table.py --before ac67cf9  # ... and run them on that commit too
    python tools/robustness_table.py --check           # exit 1 if the table is out of date

Each row is one case of the outside audit (issue 13): what the user sees now, and the tests
that cover it with their result (passed / run, from pytest's JUnit XML). This table is the one
place that maps audit items to tests; the tests themselves are named by behaviour and live in
the file that mirrors the module they exercise. With ``--before REV`` the tests that use only
the CLI and the public API (PORTABLE) also run on a checkout of REV, the code the audit tried,
and the "before" column records how many of them failed there; without it the column keeps
what the last such run wrote. Cases that cannot be fixed are listed with what is documented
instead. Issue 24's table gives what 0.3.1 did (each of its tests failed there, checked
when it was written) beside the result now.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "ROBUSTNESS.md"
START, END = "<!-- robustness-table:start -->", "<!-- robustness-table:end -->"
CLI = "tests/test_cli.py::"
INSTALL = "tests/test_install.py::"
ERRORS = "tests/test_errors.py::"
PATHS = "tests/file/test_paths.py::"
TEMPS = "tests/file/test_temporaries.py::"
READER = "tests/file/test_reader.py::"
FORMAT = "tests/file/test_format.py::"
WRITER = "tests/file/test_writer.py::"
STREAM = "tests/corpus/test_stream.py::"
READERS = "tests/corpus/test_readers.py::"
MEGATRON = "tests/corpus/test_megatron.py::"
OFFSETS = "tests/corpus/test_offsets.py::"
TEXT = "tests/corpus/test_text.py::"
TOKEN_FILES = "tests/corpus/test_token_files.py::"
STDLIB = "tests/corpus/test_stdlib.py::"
OPTIONS = "tests/builder/test_options.py::"
BOUNDED = "tests/builder/test_bounded.py::"
P = "tests/builder/test_partials.py::"
COMPUTE = "tests/targets/test_compute.py::"
T = "tests/torch/"
X = "tests/corpus/test_tokenize.py::"

# (case, what the user sees now, tests)
ITEMS = [
    ("1. an output that is an input (`-o a.npy` on a.npy, .bin, Megatron .bin/.idx, "
     "--tokenizer, --doc-lengths, bounded builds, --val-output = input or -o; symlinks, hard "
     "links; merge into a partial's file; `ngramds.build`)",
     "exit 2 before any work: `output X is the input Y: writing it would destroy the input`; "
     "inputs untouched",
     [PATHS + "test_an_output_that_is_an_input_or_another_output_is_refused",
      PATHS + "test_build_refuses_an_output_that_is_an_input",
      PATHS + "test_a_merge_output_that_is_a_file_of_a_partial_is_refused"]),
    ("2. stale-temporary cleanup by glob (`-o 'x*'` removed other files)",
     "only exact hidden names `.OUT.<random>.ngds-tmp` / `.ngds-parts` are candidates",
     [TEMPS + "test_cleanup_touches_only_its_own_exact_names"]),
    ("3. shared --tmp-dir: a build in another PID namespace lost its runs",
     "stale = its `flock` is free; a running build anywhere keeps its lock and its files",
     [TEMPS + "test_temporaries_of_a_running_build_are_never_removed",
      BOUNDED + "test_runs_of_a_killed_build_are_removed_by_the_next"]),
    ("4. a symlink planted at the predictable temporary name was followed",
     "temporaries made with O_EXCL (mkstemp/mkdtemp) under random names; links never followed",
     [TEMPS + "test_a_planted_symlink_at_a_temporary_name_is_never_followed"]),
    ("5. `<u8` values >= 2^63 in position_contexts / entry_offsets / counts / totals "
     "(SIGSEGV, wrapped ids, huge probabilities)",
     "FormatError from every target path (one order, Witten-Bell, backoff), never a crash",
     [COMPUTE + "test_64bit_values_at_and_above_2_63_are_refused_by_every_target_path",
      COMPUTE + "test_fuzzed_64bit_values_at_and_above_2_63_never_crash",
      T + "test_device.py::test_real_corpus_every_mixing"]),
    ("6. the file truncated by another process while a dataset reads it (SIGBUS)",
     "not fixable in general (a mapped page that vanished kills the process with SIGBUS, "
     "documented below); the size and identity are checked at each worker start and pass: "
     "a clear error there",
     [T + "test_file_changes.py::test_a_truncated_file_is_refused_not_a_crash"]),
    ("7. workers re-opened a rebuilt file between epochs",
     "the identity of the file first opened is kept; a changed file is refused",
     [T + "test_file_changes.py::test_a_rebuilt_file_is_refused_by_workers"]),
    ("8. merge trusted partial results (segfault, wrong file, tracebacks)",
     "CRC-32 of every file and of the manifest, typed fields, shapes, dtypes, key order, "
     "ranges and run/token consistency checked first: exit 2, one line",
     [P + "test_a_tampered_partial_is_refused",
      P + "test_a_forged_partial_is_refused_by_its_structure",
      P + "test_tokens_swapped_between_partials_are_refused",
      P + "test_an_old_partial_without_checksums_is_refused",
      P + "test_partials_carry_checksums_of_every_file",
      P + "test_a_random_byte_changed_in_a_partial_is_refused_or_harmless"]),
    ("9. `load_state_dict` with `consumed: -1` spun forever; other bad states",
     "every state field validated: one-line error; fuzzed states are refused or resume "
     "with every remaining sample once",
     [T + "test_epochs.py::test_states_of_another_layout_are_refused",
      T + "test_epochs.py::test_fuzzed_states_are_refused_or_resume_exactly_once"]),
    ("10. an input changed during a --memory-limit build",
     "identity (device, inode, size, mtime) checked at every read and a checksum of the "
     "tokens compared across passes: `input X changed while the build was reading it`, "
     "nothing written",
     [STREAM + "test_an_input_changed_during_a_bounded_build_is_refused"]),
    ("11. `--orders 1-1e12`, a 16 MB header of empty maps",
     "orders checked (1..16) before any range is made; header decoding capped at 262,144 "
     "msgpack values (refused in < 0.1 s and ~30 MiB)",
     [CLI + "test_huge_order_ranges_are_refused_at_once",
      FORMAT + "test_a_header_of_millions_of_empty_maps_is_refused_in_little_memory"]),
    ("11. text input under --memory-limit (a 50 MB one-line JSONL)",
     "tokenised in batches of <= 256 Ki characters (long documents in pieces cut at "
     "whitespace) into a temporary token file read in chunks, removed whatever happens; the "
     "same file byte for byte (a 6 MB line: 1113 -> ~350 MiB peak RSS)",
     [X + "test_long_single_line_jsonl_stays_in_bounded_memory",
      X + "test_text_build_same_bytes_with_and_without_memory_limit",
      X + "test_long_documents_encoded_in_pieces_equal_whole_encoding",
      X + "test_bounded_text_build_reads_a_temporary_token_file",
      X + "test_temporary_token_file_removed_after_failed_builds"]),
    ("11. `top_r` without bound; library `top_r=2.5`, `max_k=-1`, `epoch`/`seed` 2**64, "
     "`world_size=0`",
     "refused with one line",
     [T + "test_epochs.py::test_bad_partition_and_epoch_arguments"]),
    ("`-o ''`, `-o .`, `-o /` (failed after the build)",
     "exit 2 before any work: `output . is a directory`",
     [CLI + "test_an_output_that_is_a_directory_or_empty_is_refused_before_the_build"]),
    ("`--memory-limit inf|nan|1e400`", "exit 2, one line",
     [OPTIONS + "test_a_memory_limit_that_is_not_a_size_is_refused"]),
    ("`--threads -1|0|1000`", "exit 2: `--threads must be in 1..N`",
     [CLI + "test_threads_out_of_range_are_refused"]),
    ("Megatron with an empty .bin or zero sequences", "exit 2: the corpus is empty / truncated",
     [MEGATRON + "test_a_megatron_dataset_without_tokens_is_refused"]),
    ("`--doc-lengths` pickled, garbage, float or 2-D .npy", "exit 2 naming the file",
     [OFFSETS + "test_doc_lengths_that_are_not_integers_are_refused"]),
    ("JSONL nested 100,000 deep or with a 5000-digit integer", "exit 2 naming file:line",
     [TEXT + "test_jsonl_nested_too_deep_or_with_huge_integers_is_refused"]),
    ("`--top-k 2**70`, `--seed 2**70` with a validation split", "exit 2, one line",
     [OPTIONS + "test_top_k_and_seed_past_64_bits_are_refused"]),
    ("`query` with an id >= 2^63, negative or >= V", "exit 2: `token id X is outside the "
     "vocabulary`", [CLI + "test_query_ids_outside_the_vocabulary_are_refused"]),
    ("`info --json` on a header holding bytes", "bytes printed as hex",
     [CLI + "test_info_json_prints_header_bytes_as_hex"]),
    ("a real full disk during a bounded build or merge (np.save: no errno)",
     "exit 2: `disk full while ...`, no temporaries left",
     [BOUNDED + "test_a_full_disk_during_a_bounded_build_or_a_merge_is_one_error_line",
      WRITER + "test_full_disk_on_a_real_small_tmpfs"]),
    ("an unwritable --tmp-dir", "exit 2: `cannot write temporary runs under DIR: ...`",
     [BOUNDED + "test_an_unwritable_tmp_dir_is_refused"]),
    ("`--default-corpus` with a foreign X.tokenizer.json or a missing output directory",
     "exit 2 before any work; the foreign file is never overwritten",
     [STDLIB + "test_default_corpus_refuses_a_foreign_tokenizer_file_or_a_missing_directory"]),
    ("an unreachable Dask scheduler", "exit 2: `cannot reach the Dask scheduler at ...`",
     [BOUNDED + "test_an_unreachable_dask_scheduler_is_one_error_line"]),
    ("an unknown zero-length section shaped [0, 2^62]", "ignored, as spec/FORMAT.md says",
     [READER + "test_an_unknown_zero_length_section_of_a_huge_shape_is_ignored"]),
    ("BrokenPipeError under `| head`", "quiet exit (141)",
     [CLI + "test_a_broken_pipe_exits_quietly"]),
    ("`import ngramds` with an unwritable package directory and $HOME",
     "numba caches in a private temporary directory",
     [INSTALL + "test_import_works_with_an_unwritable_package_directory_and_home"]),
    ("`f.distribution([1.7])` became `[1]`", "InputError: ids must be integers",
     [READER + "test_distribution_of_non_integer_ids_is_refused"]),
    ("`query --top -3` hid entries", "exit 2", [CLI + "test_query_negative_top_is_refused"]),
    ("`--dtype` that looks wrong; `--eos-id` never seen or outside the vocabulary",
     "one-line warning / exit 2",
     [TOKEN_FILES + "test_a_dtype_that_looks_wrong_is_refused_in_one_line",
      READERS + "test_an_eos_id_never_seen_warns_and_one_outside_the_vocabulary_is_refused"]),
    ("`--tmp-dir` silently ignored without --memory-limit", "one-line warning",
     [CLI + "test_tmp_dir_without_memory_limit_is_said_to_be_ignored"]),
    ("`merge --tmp-dir` on a missing directory", "exit 2, nothing created",
     [CLI + "test_a_missing_merge_tmp_dir_is_refused"]),
    ("the validation file written before the main output's directory was checked",
     "every output checked first",
     [CLI + "test_every_output_is_checked_before_the_first_is_written"]),
    ("`ngramds info FIFO` hung", "exit 2: not a regular file",
     [READER + "test_opening_a_fifo_is_refused_without_hanging"]),
    ("a SIGKILL between the magic and the rename left a temporary that opens as valid",
     "the temporary is hidden (`.OUT.<random>.ngds-tmp`), OUT never holds it; the next "
     "build removes it (README corrected)",
     [WRITER + "test_a_build_killed_before_its_rename_leaves_only_a_hidden_temporary",
      WRITER + "test_sigkill_at_random_moments_never_leaves_a_partial_file"]),
    ("a two-line warning", "`ngramds: warning: ...`, one line",
     [CLI + "test_warnings_are_one_line"]),
]


# issue 24: (case, what 0.3.1 did, what the user sees now, tests); every test failed on 0.3.1
START24, END24 = "<!-- robustness-table-24:start -->", "<!-- robustness-table-24:end -->"
C = "tests/corpus/"
ITEMS24 = [
    ("1. `accelerator.prepare()` of an NgramLoader, or of a DataLoader over an NgramDataset",
     "2 processes: 128 of 256 samples per rank per epoch; `dispatch_batches=False`: TypeError; "
     "state_dict lost",
     "one-line InputError before the first batch on every rank, naming the recipe (prepare "
     "the model and optimizer only); the recipe trains every sample once per epoch under a real "
     "`accelerate launch` and resumes from `loader.state_dict()`",
     [T + "test_accelerate.py::test_accelerate_prepare_of_our_loader_or_dataset_is_refused",
      T + "test_accelerate.py::test_the_recipe_trains_every_sample_once_per_epoch",
      T + "test_accelerate.py::test_a_run_resumed_from_the_loader_state_trains_every_sample_once"]),
    ("2. packed documents in an HF Llama / GPT-2 (recipe call, NgramTrainer)",
     "logits off by up to 0.135 (Llama) / 0.047 (GPT-2) against each document alone "
     "(transformers 5.25)",
     "equal within 1e-4 in eval and train mode, SDPA and eager; the recipe and NgramTrainer "
     "pass `use_cache=False`",
     [T + "test_packing.py::test_the_hf_packed_documents_recipe_keeps_documents_apart",
      T + "test_hf.py::test_trainer_keeps_packed_documents_apart"]),
    ("3. a plain HF `Trainer` on an NgramDataset",
     "trained half the data under DDP, no error",
     "one-line InputError before the first step naming `ngramds.hf.NgramTrainer`",
     [T + "test_accelerate.py::test_a_plain_trainer_on_our_dataset_is_refused_naming_ngram_trainer",
      T + "test_hf.py::test_a_plain_trainer_on_an_ngram_dataset_is_refused"]),
    ("4. damaged or truncated `.zst` / `.bz2` / `.xz` (cut in a later frame, trailing garbage, "
     "xz padding)",
     "exit 0 with half the documents; 'the corpus is empty'; garbage accepted; the stream "
     "after xz padding lost",
     "exit 2: `<file>: cannot read it to the end (...); is the file damaged or truncated?`, "
     "nothing written; intact multi-frame input, skippable frames and padding read whole",
     [C + "test_compressed.py::test_cut_or_damaged_compressed_input_is_one_line_and_writes_nothing",
      C + "test_compressed.py::test_intact_multi_frame_input_reads_every_record",
      C + "test_compressed.py::test_zst_skippable_frame_between_frames_is_read",
      C + "test_compressed.py::test_xz_stream_padding_is_accepted"]),
    ("5. a subdirectory that cannot be listed",
     "skipped without a word",
     "exit 2 before any work: `cannot list the directory <dir>: Permission denied; ...`",
     [C + "test_discovery.py::test_unreadable_directory_is_refused",
      C + "test_discovery.py::test_unreadable_directory_as_another_user_is_refused"]),
    ("6. `NgramTargets` given a hostile batch (ids >= V or negative, another file's batch, "
     "start -100 / 10^12, epoch -1)",
     "ids came out as targets; the torch backend accepted everything",
     "one-line InputError on every backend (on a device: checked without a host sync, raised "
     "at the next call); a batch of another file is refused by its file stamp",
     [T + "test_device.py::test_hostile_windows_starts_and_epochs_are_refused",
      T + "test_device.py::test_a_batch_of_another_file_is_refused",
      T + "test_device.py::test_deferred_checks_report_the_batch_later"]),
    ("7. `verify` missed damage the dataset catches (prompt length >= 2^63; compact files: "
     "changed tokens, prefix_offsets >= 2^63, reversed lower_contexts)",
     "13 tampered files passed `verify`",
     "exit 2, one line naming the section and index; every invariant of spec/FORMAT.md, "
     "compiled, values read as unsigned",
     ["tests/file/test_verify.py"]),
    ("8. `--prompt-field prompt --response-field prompt`",
     "accepted without a word",
     "exit 2: `the prompt and the response are both field 'prompt'; give two different fields`",
     [C + "test_pairs.py::test_the_same_field_for_prompt_and_response_is_refused"]),
    ("9. `ngramds-train run --out` naming the training file; `compare` over a user's log; "
     "trailing bytes",
     "JSON appended to the .ngds (verify still OK); `D/onehot.jsonl` overwritten",
     "exit 2, files untouched: the log is an input / exists (`--overwrite`); `verify`: "
     "`N bytes after the last section`",
     ["tests/train/test_train_tool.py::test_a_log_naming_an_input_file_is_refused_and_the_file_kept",
      "tests/train/test_train_tool.py::test_an_existing_log_is_kept_unless_overwrite_is_given",
      "tests/train/test_train_tool.py::test_compare_keeps_a_users_log_in_the_out_dir",
      CLI + "test_verify_refuses_bytes_appended_to_a_file"]),
    ("10. prompt/response pairs with a huge prompt",
     "SIGABRT (an 8 GiB tokenizer allocation); `--memory-limit` refused for pairs",
     "records streamed, long fields encoded in pieces (same ids); `--memory-limit` and "
     "`--engine` give the same bytes; a record over the limit's share is one line naming it",
     [C + "test_pairs.py::test_a_long_prompt_is_encoded_in_pieces_equal_to_whole_encoding",
      C + "test_pairs.py::test_pairs_are_read_in_bounded_memory",
      C + "test_pairs.py::test_cli_pairs_with_a_memory_limit_build_the_same_file",
      C + "test_pairs.py::test_a_record_longer_than_the_read_budget_is_refused_before_it_is_read",
      C + "test_pairs.py::test_bounded_build_keeps_prompt_lengths"]),
    ("11. one huge line or row under `--memory-limit`",
     "a 2 GB line reached 5.6 GB RSS under 512M; a 30M-id parquet row read before refusal",
     "long `.txt` lines streamed in 1 MiB blocks and encoded in pieces; a `.jsonl` line or "
     "parquet/Arrow/dataset row over the limit's share refused naming the limit (parquet from "
     "its metadata, before reading)",
     [TEXT + "test_a_huge_line_is_read_in_pieces",
      TEXT + "test_a_jsonl_line_longer_than_the_read_budget_is_refused",
      C + "test_columnar.py::test_an_oversized_parquet_row_is_refused_before_it_is_read",
      C + "test_columnar.py::test_an_oversized_row_among_small_ones_is_refused",
      C + "test_columnar.py::test_an_oversized_arrow_row_is_refused",
      C + "test_columnar.py::test_build_with_a_memory_limit_bounds_a_row"]),
    ("12. `ngramds-train plot` on a FIFO", "blocked forever",
     "exit 2 at once: `... is not a regular file (a pipe, device or socket)`",
     ["tests/train/test_train_tool.py::test_plot_of_a_fifo_is_refused_at_once"]),
    ("13. a file name that is not UTF-8 (given or found)",
     "msgpack UnicodeEncodeError after the whole build, exit 1",
     "exit 2 before any work: `the file name ... is not UTF-8 (...)`",
     [C + "test_discovery.py::test_file_name_not_utf8_is_refused_before_any_work",
      C + "test_inputs.py::test_tokenizer_name_not_utf8_is_refused_before_any_work"]),
    ("14. Ctrl-C in the first seconds of a build", "an 18-48 line traceback",
     "`ngramds: interrupted`, exit 130, from about 0.15 s (heavy modules load lazily)",
     [CLI + "test_ctrl_c_while_heavy_modules_load_is_one_line",
      CLI + "test_ctrl_c_before_the_command_starts_is_one_line"]),
    ("15. `plot` of a non-UTF-8 log; `-o keep.jsonl`, `-o x.ngds`",
     "UnicodeDecodeError; matplotlib ValueError",
     "exit 2, one line: not a log / the plot is the log / needs an image suffix",
     ["tests/train/test_train_tool.py::test_plot_of_a_log_that_is_not_utf8_is_one_line",
      "tests/train/test_train_tool.py::test_plot_output_that_is_a_log_or_no_image_is_refused"]),
    ("16. `build(DatasetDict)`; a changing IterableDataset schema; a state of numpy arrays; "
     "`NgramTargets` with an empty batch / missing key / shape mismatch",
     "AttributeError; raw Arrow error; 'truth value ambiguous'; RuntimeError / KeyError",
     "one line each: pick a split; rows after row N differ; the state's X is an array; the "
     "batch's key / shape",
     [C + "test_columnar.py::test_a_dataset_dict_asks_for_a_split",
      C + "test_columnar.py::test_an_iterable_dataset_whose_columns_change_is_one_line",
      T + "test_dataset.py::test_a_state_holding_arrays_is_refused_in_one_line",
      T + "test_dataset.py::test_a_state_of_numpy_scalars_resumes",
      T + "test_device.py::test_malformed_batches_are_one_line_input_errors"]),
    ("17. Arrow list offsets past the values; a FIFO `--tokenizer`; a directory of pairs",
     "'document boundaries must rise' (no file); 'does not exist'; 'Is a directory'",
     "one line naming the file and the cause",
     [C + "test_inputs.py::test_arrow_list_offsets_past_the_values_name_the_file",
      C + "test_inputs.py::test_tokenizer_that_is_not_a_regular_file_says_what_it_is",
      C + "test_inputs.py::test_directory_given_for_prompt_response_pairs_says_so"]),
    ("18-19. a source tree (`--include '*.c'`, `'*.py'`)",
     "every file refused as 'a headerless token file'; without --include 'none found'",
     "with a tokenizer, matched files of other kinds are text (a document per file), binaries "
     "skipped and counted; without --include the error lists what is there and the "
     "`--include` to give",
     [C + "test_discovery.py::test_source_tree_builds_one_document_per_file_and_counts_skipped_binaries",
      C + "test_discovery.py::test_python_package_builds_with_include",
      C + "test_discovery.py::test_source_file_named_is_one_text_document",
      C + "test_discovery.py::test_tree_of_only_binaries_is_refused_naming_the_count"]),
    ("20. the first run's kernel compilation", "looked hung; '0.14M tokens/s'",
     "progress says `compiling kernels (first run only)`; the rate leaves compile time out",
     ["tests/test_progress.py"]),
    ("21. a `--dtype` the data contradicts", "two warnings, then a file of vocabulary 536,739,855",
     "exit 2 naming the right `--dtype`; `--force-dtype` reads it as given",
     [C + "test_inputs.py::test_wrong_dtype_is_refused_naming_the_right_one_unless_forced",
      TOKEN_FILES + "test_a_dtype_that_looks_wrong_is_refused_in_one_line"]),
    ("22. `ngram_loss` with logits narrower than the file's vocabulary",
     "raw torch 'index 7410 is out of bounds'",
     "one line naming the id and the logits' width (on a device: an async assert, no host sync)",
     [T + "test_loss.py::test_a_model_vocabulary_smaller_than_the_files_is_named"]),
    ("23. building an NgramLoader over a dataset", "changed it: a DataLoader over it then "
     "yielded [2, 2, 64] labels", "the dataset is unchanged; loader and dataset share epoch "
     "and position",
     [T + "test_loader.py::test_wrapping_a_dataset_does_not_change_it",
      T + "test_loader.py::test_loader_and_its_dataset_share_the_epoch_and_the_position"]),
    ("24. NgramTrainer resumed mid-epoch", "logged epoch 0.125 where 0.5 was right; "
     "`resume_from_checkpoint=True` ignored the loader state",
     "the same samples and logged epochs as an uninterrupted run; a checkpoint without the "
     "loader state is refused",
     [T + "test_hf.py::test_resume_from_a_checkpoint_continues_exactly",
      T + "test_hf.py::test_resuming_from_a_checkpoint_without_the_loader_state_is_refused"]),
]

# tests that use only the CLI and the public API (the audit's own cases): with --before they
# also run on older code
PORTABLE = [t for _, _, tests in ITEMS for t in tests
            if t.startswith((CLI, INSTALL, PATHS, TEMPS, READER, FORMAT, STREAM, READERS,
                             MEGATRON, OFFSETS, TEXT, TOKEN_FILES,
                             STDLIB, OPTIONS, BOUNDED))
            and t != BOUNDED + "test_runs_of_a_killed_build_are_removed_by_the_next"]
PORTABLE += [WRITER + "test_a_build_killed_before_its_rename_leaves_only_a_hidden_temporary",
             P + "test_a_tampered_partial_is_refused"]
# shared helpers the portable tests import (copied next to them for --before)
SUPPORT = ["tests/conftest.py", "tests/helpers.py", "tests/cli_helpers.py"]


# what the cases whose tests need this version's API did on ac67cf9 (checked by hand)
BEFORE_NOTES = {
    "5.": "SIGSEGV (2^63 + 2^40 in position_contexts or entry_offsets), wrong ids (2^64 - 2), "
          "probabilities up to 6e18 (counts): the same cases through the old API",
    "6.": "SIGBUS (the dataset's tests, tests/torch)",
    "7.": "silently trained on the new file (the dataset's tests, tests/torch)",
    "9.": "spun forever (the dataset's tests, tests/torch)",
    "11. `top_r`": "2.5 GB for top_r=10**6, tracebacks (the dataset's tests, tests/torch)",
    "11. text": "SIGABRT under a hard memory limit",
}


def collected(paths: list[str]) -> set[str]:
    r = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-o", "addopts=",
                        "-q", "-p", "no:cacheprovider", *paths], cwd=ROOT,
                       capture_output=True, text=True)
    return {line.split("[")[0] for line in r.stdout.splitlines() if "::" in line}


def results(tests: list[str], root: Path = ROOT, rename=None) -> dict[str, list[str]]:
    """test id (without parameters) -> outcome of each of its cases (run under ``root``;
    ``rename`` maps a file name there back to its name here)."""
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "r.xml"
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        f"--junitxml={xml}", *tests], cwd=root)
        out = defaultdict(list)
        for case in ET.parse(xml).getroot().iter("testcase"):
            path = case.get("classname").replace(".", "/") + ".py"
            path = (rename or {}).get(path, path)
            name = case.get("name").split("[")[0]
            kids = {k.tag for k in case}
            out[f"{path}::{name}"].append(
                "failed" if kids & {"failure", "error"} else
                "skipped" if "skipped" in kids else "passed")
    return out


def before_run(rev: str) -> dict[str, list[str]]:
    """Outcomes of the PORTABLE tests on a checkout of ``rev``: each test's file and the
    SUPPORT files are copied flat into its tests/ (its tests were flat)."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], cwd=ROOT,
                       check=True, capture_output=True)
        try:
            rename, tests = {}, []
            for t in PORTABLE:
                src = t.split("::")[0]
                shutil.copy(ROOT / src, tree / "tests" / Path(src).name)
                rename[f"tests/{Path(src).name}"] = src
                tests.append(t.replace(src, f"tests/{Path(src).name}"))
            for helper in SUPPORT:
                shutil.copy(ROOT / helper, tree / "tests" / Path(helper).name)
            return results(tests, tree, rename)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                           capture_output=True)


def previous_before(text: str) -> dict[str, str]:
    """case -> the "before" cell of the table in ``text`` (kept when not run again)."""
    out = {}
    for line in text[text.index(START):text.index(END)].splitlines()[3:]:
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        if len(cells) == 5:
            out[cells[0]] = cells[1]
    return out


def portable(test: str) -> bool:
    return any(test == p or test.startswith(p + "::") for p in PORTABLE)


def before_cell(case: str, tests: list[str], before: dict | None, kept: str) -> str:
    if not any(map(portable, tests)):
        return next((v for k, v in BEFORE_NOTES.items() if case.startswith(k)), "-")
    if before is None:
        return kept or "-"
    got = [o for t in tests for o in before.get(t, [])]
    return f"{got.count('failed')}/{len(got)} failed"


def outcomes_of(test: str, outcomes: dict) -> list[str]:
    """Outcomes of one test id, or of every test of a file given as a path."""
    if "::" in test:
        return outcomes.get(test, [])
    return [o for k, v in outcomes.items() if k.startswith(test + "::") for o in v]


def test_cells(tests: list[str], outcomes: dict, known: set) -> tuple[str, str]:
    cells, verdicts = [], []
    for t in tests:
        short = t.split("::")[-1]
        if t not in known:
            cells.append(f"`{short}` (not in this tree)")
            continue
        got = outcomes_of(t, outcomes)
        cells.append(f"`{Path(t.split('::')[0]).name}::{short}`" if "::" in t else f"`{t}`")
        ok = got.count("passed")
        verdicts.append(f"{ok}/{len(got)} passed" + (
            f", {got.count('skipped')} skipped" if "skipped" in got else ""))
    return "<br>".join(cells) or "documented", "<br>".join(verdicts) or "-"


def row(cells) -> str:
    return "| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |"


def table(outcomes: dict, known: set, before: dict | None, kept: dict) -> str:
    rows = ["| case (issue 13) | before (tests on ac67cf9) | what the user sees now | tests | "
            "result |", "|---|---|---|---|---|"]
    for case, now, tests in ITEMS:
        esc = case.replace("|", "\\|")
        rows.append(row((case, before_cell(case, tests, before, kept.get(esc, "")), now,
                         *test_cells(tests, outcomes, known))))
    return "\n".join(rows)


def table24(outcomes: dict, known: set) -> str:
    rows = ["| case (issue 24) | 0.3.1 | what the user sees now | tests (each failed on "
            "0.3.1) | result |", "|---|---|---|---|---|"]
    for case, was, now, tests in ITEMS24:
        rows.append(row((case, was, now, *test_cells(tests, outcomes, known))))
    return "\n".join(rows)


def replace_between(text: str, start: str, end: str, body: str) -> str:
    a, b = text.index(start) + len(start), text.index(end)
    return text[:a] + "\n" + body + "\n" + text[b:]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if the table is out of date")
    ap.add_argument("--before", metavar="REV", help="also run the portable tests on REV")
    args = ap.parse_args()
    wanted = [t for _, _, tests in ITEMS for t in tests]
    wanted += [t for *_, tests in ITEMS24 for t in tests]
    files = sorted({t.split("::")[0] for t in wanted if (ROOT / t.split("::")[0]).exists()})
    known = collected(files) | {t for t in wanted if "::" not in t and (ROOT / t).exists()}
    outcomes = results(sorted({t for t in wanted if t in known}))
    before = before_run(args.before) if args.before else None
    text = DOC.read_text()
    new = replace_between(text, START, END,
                          table(outcomes, known, before, previous_before(text)))
    new = replace_between(new, START24, END24, table24(outcomes, known))
    if args.check:
        return int(new != text)
    DOC.write_text(new)
    failed = sum(v.count("failed") for v in outcomes.values())
    print(f"{DOC.relative_to(ROOT)}: {len(ITEMS) + len(ITEMS24)} cases, {sum(map(len, outcomes.values()))} "
          f"test cases, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
