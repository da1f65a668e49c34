"""tilecc.load / Module.run on the toy artifact: numerics, thread pool, input checks."""

import threading

import numpy as np
import pytest
from toy_artifact import build_toy, random_inputs, reference

import tilecc
from tilecc.errors import ArtifactError, InputError, ModelRunError


def check_tasks(out, n):
    counts, info = out["counts"], out["info"]
    assert info[0] == n, f"outer parallel_for saw {info[0]} tasks, wanted {n}"
    assert info[1] == 1, "a nested parallel_for must run inline as one task"
    np.testing.assert_array_equal(counts[:n], 1)  # every task id exactly once
    np.testing.assert_array_equal(counts[n:], 0)


def test_run_matches_numpy(toy_tar):
    mod = tilecc.load(toy_tar)
    inputs = random_inputs()
    out = mod.run(inputs)
    assert list(out) == ["y", "counts", "info"]
    np.testing.assert_allclose(out["y"], reference(inputs["x"], 3), rtol=1e-6)
    assert out["y"].dtype == np.float32 and out["y"].shape == (3, 13)


def test_outputs_are_copies(toy_tar):
    mod = tilecc.load(toy_tar)
    first = mod.run(random_inputs(0))
    second = mod.run(random_inputs(1))
    assert not np.array_equal(first["y"], second["y"])
    np.testing.assert_allclose(first["y"], reference(random_inputs(0)["x"], 3), rtol=1e-6)


def test_metadata_and_info(toy_tar):
    mod = tilecc.load(toy_tar)
    assert mod.input_info == [{"name": "x", "shape": [3, 13], "dtype": "float32"},
                              {"name": "k", "shape": [1], "dtype": "int32"}]
    assert [o["name"] for o in mod.output_info] == ["y", "counts", "info"]
    assert mod.metadata["name"] == "toy"
    assert mod.metadata["workspace_size"] == 256
    assert "toy" in repr(mod)


@pytest.mark.parametrize("threads", [1, 2, 3, 5])
def test_every_task_runs_once(toy_tar, threads):
    mod = tilecc.load(toy_tar, num_threads=threads)
    assert mod.get_num_threads() == threads
    for seed in range(200):
        inputs = random_inputs(seed)
        out = mod.run(inputs)
        check_tasks(out, threads)
        np.testing.assert_allclose(out["y"], reference(inputs["x"], 3), rtol=1e-6)


def test_thread_count_changes_between_runs(toy_tar):
    mod = tilecc.load(toy_tar)
    for n in [4, 2, 1, 3, 2, 4]:  # shrinking keeps extra workers idle, growing adds more
        mod.set_num_threads(n)
        for _ in range(20):
            check_tasks(mod.run(random_inputs()), n)


@pytest.mark.parametrize("env", ["1", "2"])
def test_env_var_sets_default_threads(toy_tar, monkeypatch, env):
    monkeypatch.setenv("TILECC_NUM_THREADS", env)
    mod = tilecc.load(toy_tar)  # each load is a fresh library, so it reads the env again
    assert mod.get_num_threads() == int(env)
    check_tasks(mod.run(random_inputs()), int(env))


def test_bad_thread_count(toy_tar):
    with pytest.raises(InputError, match=">= 1"):
        tilecc.load(toy_tar).set_num_threads(0)


@pytest.mark.parametrize("k, code, threads", [(-1, 42, 2), (-1, 42, 1), (-2, 7, 2)])
def test_error_code_propagates(toy_tar, k, code, threads):
    mod = tilecc.load(toy_tar, num_threads=threads)
    with pytest.raises(ModelRunError, match=f"code {code}") as info:
        mod.run(random_inputs(k=k))
    assert info.value.code == code and isinstance(info.value, RuntimeError)
    check_tasks(mod.run(random_inputs()), threads)  # the pool still works afterwards


def test_concurrent_modules(tmp_path, toy_tar):
    """Two libraries, two pools, driven from two Python threads at once."""
    mods = [tilecc.load(toy_tar, num_threads=2),
            tilecc.load(build_toy(tmp_path, name="toy2"), num_threads=2)]
    errors = []

    def worker(mod, seed):
        try:
            for i in range(300):
                inputs = random_inputs(seed + i)
                out = mod.run(inputs)
                np.testing.assert_allclose(out["y"], reference(inputs["x"], 3), rtol=1e-6)
                check_tasks(out, 2)
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(mods[i % 2], 1000 * i)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


@pytest.mark.parametrize("inputs, message", [
    ({"x": np.zeros((3, 13), np.float32)}, "missing input 'k'"),
    ({"x": np.zeros((3, 13), np.float32), "k": np.zeros(1, np.int32), "z": 1},
     "unknown input 'z'"),
    ({"x": np.zeros((3, 13)), "k": np.zeros(1, np.int32)},
     "input 'x': expected dtype float32, got float64"),
    ({"x": np.zeros((3, 13), np.float32), "k": np.zeros(1, np.int64)},
     "input 'k': expected dtype int32, got int64"),
    ({"x": np.zeros((13, 3), np.float32), "k": np.zeros(1, np.int32)},
     r"input 'x': expected shape \(3, 13\), got \(13, 3\)"),
    ({"x": np.zeros((3, 13), np.float32), "k": 3}, "input 'k': expected dtype int32"),
])
def test_input_errors(toy_tar, inputs, message):
    with pytest.raises(InputError, match=message):
        tilecc.load(toy_tar).run(inputs)


def test_non_contiguous_input(toy_tar):
    x = np.asfortranarray(random_inputs()["x"])
    out = tilecc.load(toy_tar).run({"x": x, "k": np.array([3], np.int32)})
    np.testing.assert_allclose(out["y"], reference(x, 3), rtol=1e-6)


def test_wrong_params_size_fails_init(tmp_path):
    path = build_toy(tmp_path, params=np.zeros(3, np.float32))
    with pytest.raises(ArtifactError, match="init failed with code 1"):
        tilecc.load(path)


def test_foreign_architecture_refused(tmp_path):
    import platform

    from toy_artifact import toy_artifact

    art = toy_artifact(tmp_path)
    other = "riscv64-unknown-linux-gnu" if platform.machine() != "riscv64" else \
        "x86_64-unknown-linux-gnu"
    art.metadata["target"] = dict(art.metadata["target"], triple=other)
    path = art.save(tmp_path / "foreign.tar")
    with pytest.raises(ArtifactError, match=f"built for {other}"):
        tilecc.load(path)
