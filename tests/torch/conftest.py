"""The devices the device-target and loss tests run on: the CPU, and CUDA when present;
NGRAMDS_TEST_DEVICES (e.g. "cuda", as tools/gpu_check.py sets it) picks them explicitly."""
import os

import torch


def chosen_devices() -> list[str]:
    """The devices of the ``device`` parameter."""
    chosen = os.environ.get("NGRAMDS_TEST_DEVICES", "").strip()
    if chosen:
        return [d.strip() for d in chosen.split(",") if d.strip()]
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def pytest_generate_tests(metafunc):
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", chosen_devices())
