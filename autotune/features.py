"""Candidate features and the cost model that ranks unmeasured candidates.

Features: log2 of each knob value, plus simple loop features of the lowered loop IR (loop
depth, extents of the innermost loops, vector width, unroll product, parallel extent, and the
bytes loads/stores touch per execution of the innermost body and in total).
"""

from __future__ import annotations

import math

import numpy as np

from tilecc import expr as E
from tilecc.loopir import Allocate, For, IfThenElse, Seq, Store


def _loads(e) -> int:
    n = 0
    stack = [e]
    while stack:
        x = stack.pop()
        if isinstance(x, E.Load):
            n += 1
        stack.extend(E.children(x))
    return n


def loop_features(func) -> list[float]:
    depth_max, vec, unroll, par, stores = 0, 1, 1, 1, 0
    inner = [1, 1, 1]
    traffic_total, traffic_inner = 0.0, 0.0

    def go(s, depth, extents):
        nonlocal depth_max, vec, unroll, par, stores, inner, traffic_total, traffic_inner
        if isinstance(s, For):
            if s.kind == "vectorize":
                vec = max(vec, s.extent)
            elif s.kind == "unroll":
                unroll *= s.extent
            elif s.kind == "parallel":
                par = max(par, s.extent)
            go(s.body, depth + 1, extents + [s.extent])
        elif isinstance(s, Seq):
            for x in s.stmts:
                go(x, depth, extents)
        elif isinstance(s, IfThenElse):
            go(s.then, depth, extents)
            if s.other is not None:
                go(s.other, depth, extents)
        elif isinstance(s, Allocate):
            go(s.body, depth, extents)
        elif isinstance(s, Store):
            stores += 1
            size = np.dtype(s.buffer.dtype).itemsize
            per = (1 + _loads(s.value)) * size
            execs = math.prod(extents)
            traffic_total += per * execs
            if depth >= depth_max:
                if depth > depth_max:
                    traffic_inner = 0.0
                depth_max = depth
                inner = ([1, 1, 1] + extents)[-3:]
                traffic_inner += per * math.prod(extents[-2:])

    go(func.body, 0, [])
    return [depth_max, *(math.log2(x) for x in inner), math.log2(vec), math.log2(unroll),
            math.log2(par), stores, math.log2(1 + traffic_inner), math.log2(1 + traffic_total)]


def knob_features(space, cfg: dict) -> list[float]:
    return [math.log2(max(1, cfg.get(k, 1))) if isinstance(cfg.get(k, 1), (int, float))
            else float(space.knobs[k].index(cfg[k])) for k in space.names]


class Featurizer:
    """Features of a task's candidates, computed by lowering (no codegen) and cached."""

    def __init__(self, task, target):
        self.task, self.target = task, target
        self.cache: dict[str, list[float]] = {}

    def __call__(self, cfg: dict) -> list[float]:
        from tilecc.build import build_schedule
        from tilecc.schedule import lower

        from .record import config_key

        k = config_key(cfg)
        if k not in self.cache:
            node, graph = self.task.graph_node()
            try:
                sch, args, _, _ = build_schedule(node, graph, self.target, None,
                                                 cfg_override=cfg or None)
                lf = loop_features(lower(sch, args, "f"))
            except Exception:  # noqa: BLE001 - an unlowerable config is ranked last anyway
                lf = [0.0] * 11
            self.cache[k] = knob_features(self.task.space, cfg) + lf
        return self.cache[k]


class RidgeModel:
    """Ridge regression of log(cost) on standardised features plus pairwise products of the
    knob features (knob interactions such as block x vector width drive register pressure).
    Closed form, so retraining after every batch costs nothing."""

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha
        self.w = None

    @staticmethod
    def _expand(X: np.ndarray) -> np.ndarray:
        n = X.shape[1]
        cross = [X[:, i] * X[:, j] for i in range(n) for j in range(i, n)]
        return np.column_stack([X, *cross]) if cross else X

    def fit(self, X, y):
        X = self._expand(np.asarray(X, float))
        self.mu, self.sd = X.mean(0), X.std(0) + 1e-9
        Z = (X - self.mu) / self.sd
        self.y0 = float(np.mean(y))
        A = Z.T @ Z + self.alpha * np.eye(Z.shape[1])
        self.w = np.linalg.solve(A, Z.T @ (np.asarray(y, float) - self.y0))
        return self

    def predict(self, X) -> np.ndarray:
        X = self._expand(np.asarray(X, float))
        if self.w is None:
            return np.zeros(len(X))
        return ((X - self.mu) / self.sd) @ self.w + self.y0


class GBDTModel:
    """Gradient-boosted trees (scikit-learn's HistGradientBoostingRegressor) on the raw
    features, fit on log(cost): no scaling or hand-made interaction terms needed. Settings are
    for tens of samples (picked by `benchmarks/bench_cost_model.py --sweep`): tiny leaves,
    shallow trees, a fixed number of rounds, as there is no data to spare for validation."""

    def __init__(self, max_iter: int = 30, learning_rate: float = 0.2,
                 max_leaf_nodes: int = 4, min_samples_leaf: int = 2, seed: int = 0):
        from sklearn.ensemble import HistGradientBoostingRegressor

        self.reg = HistGradientBoostingRegressor(
            max_iter=max_iter, learning_rate=learning_rate, max_leaf_nodes=max_leaf_nodes,
            min_samples_leaf=min_samples_leaf, l2_regularization=0.0, early_stopping=False,
            random_state=seed)
        self.fitted = False

    def fit(self, X, y):
        from threadpoolctl import threadpool_limits

        # One thread: on tens of rows OpenMP start-up costs more than it saves, and extra
        # threads would disturb candidates being timed on the other cores.
        with threadpool_limits(1):
            self.reg.fit(np.asarray(X, float), np.asarray(y, float))
        self.fitted = True
        return self

    def predict(self, X) -> np.ndarray:
        X = np.asarray(X, float)
        if not self.fitted:
            return np.zeros(len(X))
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            return self.reg.predict(X)


COST_MODELS = {"ridge": RidgeModel, "gbdt": GBDTModel}
# Ridge: in a replay of tuning over complete logs (BENCHMARKS.md, "Cost model") trees found
# the best configs no sooner on today's spaces of <= 56 configs, and ridge needs no library.
DEFAULT_COST_MODEL = "ridge"


def make_cost_model(name: str, seed: int = 0):
    """The named cost model; "gbdt" falls back to ridge when scikit-learn is not installed
    (it is an optional dependency: the `tune` extra)."""
    if name == "gbdt":
        try:
            return GBDTModel(seed=seed)
        except ImportError:
            import warnings
            warnings.warn("cost model gbdt needs scikit-learn (pip install 'tilecc[tune]'); "
                          "using ridge", stacklevel=2)
            return RidgeModel()
    if name not in COST_MODELS:
        from tilecc.errors import InputError
        raise InputError(f"unknown cost model {name!r}; choose one of {', '.join(COST_MODELS)}")
    return COST_MODELS[name]()
