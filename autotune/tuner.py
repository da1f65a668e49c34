"""Tuners propose the next configs of one task: random, grid, and model-guided (simulated
annealing over the knob space, ranked by a cost model retrained as results arrive)."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

import numpy as np

from .features import DEFAULT_COST_MODEL, Featurizer, make_cost_model
from .record import config_key


class Tuner:
    def __init__(self, task, seed: int = 0):
        self.task = task
        self.space = task.space
        self.rng = random.Random(seed)
        self.visited: set[str] = set()
        self.xs: list[dict] = []  # successfully measured configs
        self.ys: list[float] = []  # their costs

    def has_next(self) -> bool:
        return len(self.visited) < self.space.size

    def update(self, configs: list[dict], costs: list[float]) -> None:
        """Costs in seconds; inf for failed candidates (never chosen, never retried)."""
        for c, y in zip(configs, costs):
            self.visited.add(config_key(c))
            if math.isfinite(y):
                self.xs.append(c)
                self.ys.append(y)

    def next_batch(self, n: int) -> list[dict]:
        raise NotImplementedError

    def _unvisited_random(self, n: int, exclude: set[str] = frozenset()) -> list[dict]:
        out: list[dict] = []
        if n <= 0:
            return out
        taken = set(self.visited) | set(exclude)
        candidates: Iterator[dict]
        if self.space.size <= 4096:
            idx = list(range(self.space.size))
            self.rng.shuffle(idx)
            candidates = (self.space.get(i) for i in idx)
        else:
            # Lazily, so sampling stops (and the rng with it) once the batch is full.
            candidates = (self.space.sample(self.rng) for _ in range(50 * n))
        for c in candidates:
            key = config_key(c)
            if key not in taken:
                out.append(c)
                taken.add(key)
                if len(out) == n:
                    break
        return out


class RandomTuner(Tuner):
    def next_batch(self, n: int) -> list[dict]:
        return self._unvisited_random(n)


class GridTuner(Tuner):
    def __init__(self, task, seed: int = 0):
        super().__init__(task, seed)
        self.pos = 0

    def next_batch(self, n: int) -> list[dict]:
        out = []
        while len(out) < n and self.pos < self.space.size:
            c = self.space.get(self.pos)
            self.pos += 1
            if config_key(c) not in self.visited:
                out.append(c)
        return out


class ModelTuner(Tuner):
    """Cost-model guided search. Until `min_train` results exist it samples at random; then
    each batch is the model's best unvisited candidates (from the whole space when it is
    small, else from simulated-annealing walks), with a share `eps` of random picks so a wrong
    model cannot starve parts of the space."""

    def __init__(self, task, seed: int = 0, target=None, min_train: int = 6, eps: float = 0.2,
                 sa_steps: int = 200, sa_walkers: int = 16, cost_model: str = DEFAULT_COST_MODEL):
        super().__init__(task, seed)
        self.feat = Featurizer(task, target)
        self.model = make_cost_model(cost_model, seed)
        self.min_train, self.eps = min_train, eps
        self.sa_steps, self.sa_walkers = sa_steps, sa_walkers

    def _predict(self, cfgs: list[dict]) -> np.ndarray:
        return self.model.predict([self.feat(c) for c in cfgs])

    def next_batch(self, n: int) -> list[dict]:
        if len(self.ys) < self.min_train:
            return self._unvisited_random(n)
        self.model.fit([self.feat(c) for c in self.xs], np.log(self.ys))
        n_model = max(1, n - round(self.eps * n))
        if self.space.size <= 512:
            pool = [c for c in self.space if config_key(c) not in self.visited]
        else:
            pool = self._anneal(4 * n)
        if not pool:
            return []
        pred = self._predict(pool)
        chosen = [pool[i] for i in np.argsort(pred)[:n_model]]
        taken = {config_key(c) for c in chosen}
        return chosen + self._unvisited_random(n - len(chosen), taken)

    def _anneal(self, want: int) -> list[dict]:
        """Walk from the best measured configs and random points; keep the best unvisited
        configs seen (by predicted cost)."""
        order = np.argsort(self.ys)
        walkers = [self.xs[i] for i in order[: self.sa_walkers // 2]]
        walkers += [self.space.sample(self.rng) for _ in range(self.sa_walkers - len(walkers))]
        scores = list(self._predict(walkers))
        found: dict[str, tuple[float, dict]] = {}
        for step in range(self.sa_steps):
            temp = max(1e-3, 1.0 - step / self.sa_steps)
            moves = [self.space.neighbour(w, self.rng) for w in walkers]
            new = self._predict(moves)
            for k, (m, s) in enumerate(zip(moves, new)):
                if s < scores[k] or self.rng.random() < math.exp((scores[k] - s) / temp):
                    walkers[k], scores[k] = m, s
                key = config_key(m)
                if key not in self.visited:
                    found[key] = (float(s), m)
        return [c for _, c in sorted(found.values(), key=lambda t: t[0])[:want]]


TUNERS = {"random": RandomTuner, "grid": GridTuner, "model": ModelTuner}


def make_tuner(kind: str, task, seed: int, target, cost_model: str = DEFAULT_COST_MODEL):
    if kind not in TUNERS:
        from tilecc.errors import InputError
        raise InputError(f"unknown tuner {kind!r}; choose one of {', '.join(TUNERS)}")
    if kind == "model":
        return ModelTuner(task, seed, target, cost_model=cost_model)
    return TUNERS[kind](task, seed)
