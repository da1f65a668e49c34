"""The official ONNX node conformance suite (onnx.backend.test) against tilecc's compiled path.

The node cases are generated in memory from the installed onnx wheel (its
`onnx/backend/test/case/node` definitions and their numpy references); nothing is
downloaded. Every case goes through `tilecc.frontends.onnx_backend` (import, passes, LLVM,
link, load, run). Expected failures live in `tests/frontends/backend_xfail.py`: the
out-of-scope cases are skipped with their reason, the others are strict expected failures
(a case that starts passing fails the run until its entry is removed).

The whole suite is `slow` (about 1,900 compiles); a small representative subset runs in the
default selection. At the end of a run that executed cases, the figures are printed:
passed / total node cases, and passed / total excluding the out-of-scope entries.
"""

from __future__ import annotations

import functools
import re

import onnx.backend.test
import pytest

import tilecc.frontends.onnx_backend as backend
from tests.frontends.backend_xfail import EXPECTED_FAILURES, OUT_OF_SCOPE

_RESULTS: dict[str, str] = {}


def _matches(table: dict[str, str], name: str) -> str | None:
    for pattern, reason in table.items():
        if re.search(pattern, name):
            return reason
    return None


def _recording(fn, name):
    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            out = fn(*args, **kwargs)
        except BaseException as e:
            # unittest's SkipTest is not an outcome of tilecc; everything else is a failure.
            _RESULTS[name] = "skip" if type(e).__name__ == "SkipTest" else "fail"
            raise
        _RESULTS[name] = "pass"
        return out
    return run


def _node_suite():
    bt = onnx.backend.test.BackendTest(backend, __name__)
    for pattern in OUT_OF_SCOPE:
        bt.exclude(pattern)
    for pattern in EXPECTED_FAILURES:
        bt.xfail(pattern)
    case = bt.test_cases["OnnxBackendNodeModelTest"]
    names = sorted(n for n in vars(case) if n.startswith("test_") and n.endswith("_cpu"))
    for n in names:
        setattr(case, n, _recording(getattr(case, n), n))
    return case, names


OnnxBackendNodeModelTest, NODE_CASES = _node_suite()
OnnxBackendNodeModelTest = pytest.mark.slow(OnnxBackendNodeModelTest)

# A cross-section that stays in the default (fast) selection: dtypes, broadcasting, static
# inputs bound by the adapter, multi-output ops, folds.
QUICK = ["test_add_bcast_cpu", "test_where_long_example_cpu", "test_cast_FLOAT_to_FLOAT16_cpu",
         "test_equal_bcast_cpu", "test_reshape_negative_dim_cpu", "test_top_k_cpu",
         "test_argmax_keepdims_random_select_last_index_cpu", "test_cumsum_2d_axis_1_cpu",
         "test_scatter_elements_with_negative_indices_cpu", "test_gathernd_example_int32_cpu",
         "test_reduce_log_sum_exp_keepdims_random_cpu", "test_range_int32_type_negative_delta_cpu",
         "test_mod_mixed_sign_int8_cpu", "test_onehot_with_axis_cpu", "test_tile_cpu"]


@pytest.mark.parametrize("name", QUICK)
def test_quick_subset(name):
    assert name in NODE_CASES
    assert _matches(OUT_OF_SCOPE, name) is None and _matches(EXPECTED_FAILURES, name) is None
    getattr(OnnxBackendNodeModelTest(name), name)()


def test_xfail_entries_are_live():
    """Every entry has a reason and matches at least one node case (no stale entries)."""
    for table in (OUT_OF_SCOPE, EXPECTED_FAILURES):
        for pattern, reason in table.items():
            assert reason.strip(), pattern
            assert any(re.search(pattern, n) for n in NODE_CASES), f"stale entry {pattern!r}"


@pytest.fixture(scope="module", autouse=True)
def _figures(request):
    yield
    ran = {n: r for n, r in _RESULTS.items() if n in NODE_CASES}
    if len(ran) < len(NODE_CASES) // 2:
        return  # a partial selection: figures would mislead
    out = {n for n in NODE_CASES if _matches(OUT_OF_SCOPE, n)}
    passed = {n for n, r in ran.items() if r == "pass"}
    total, in_scope = len(NODE_CASES), len(NODE_CASES) - len(out)
    in_passed = len(passed - out)
    line = (f"ONNX node conformance: {len(passed)}/{total} passed ({100 * len(passed) / total:.1f}%)"
            f"; in scope {in_passed}/{in_scope} ({100 * in_passed / in_scope:.1f}%)")
    rep = request.config.pluginmanager.get_plugin("terminalreporter")
    if rep is not None:
        rep.write_line("")
        rep.write_line(line)
    print(line)
