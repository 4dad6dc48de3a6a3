"""Particle properties nobody measured (masses, charges), learned together with the law.

A tracker films positions; masses and charges are often unknown. When a dataset lists them
in ``meta.learned`` (:mod:`eqlgn.data`: their columns hold each particle's identity),
:class:`LearnedProperties` holds one trainable value per identity — ``log m`` (so masses stay
positive; Lemos et al. 2022 learned the planets' log-masses with Newton's law) and ``q`` —
and :class:`WithProperties` puts them into the node features before the GN sees them. The
GN's symbols keep their names: ``m1``, ``m2``, ``q1``, ``q2`` are the learned values.

The values have their own learning rate (``TrainConfig.properties``, a parameter group of
the run's Adam). Only what the accelerations determine is learned: for gravity the senders'
masses up to one global factor (the law's constant absorbs it), for Coulomb's law the
charges up to a factor and a sign (a sign per simulation for per-particle identities: flipping
every charge of a simulation leaves its forces unchanged); with masses and charges both learned,
Coulomb's law fixes only ``q_i q_j / m_i``, so each simulation keeps one more factor (``m → c m``,
``q → √c q``).

**Where they start** (:mod:`eqlgn.property_starts`). Learned together with an unknown law from
equal starting values, the masses never separate: the network's best first answer is a mass-free
message, whose derivative with respect to ``m2`` is then about zero, so the masses get no signal
(measured on REBOUND gravity: docs/results.md, "Real tracking data"). So the masses start where
momentum conservation puts them, exact within each simulation up to one factor; by default
(``[properties] masses = "ratios"``) training keeps those ratios and learns only the factor, one per
simulation; with ``"free"`` (``--masses free``) every value is learned on its own from there, which
lets the per-particle values drift apart. Charges start at the signs the data's central pair
forces vote for, magnitude 1 (``[properties] charges = "pairs"``, the default), or at small
random values (``"random"``; all zeros would be a saddle of ``q1·q2``): from random values each
particle's sign is a discrete choice that gradient descent does not settle.

After training, :func:`bake` fills the learned values into the datasets and hands back the
inner GN, so that extraction, the judge and everything after read ordinary data;
:func:`properties_table` lists the values per identity (``properties.csv`` of a run).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from .data import ParticleDataset
from .layout import NodeLayout
from .models import GNOutput, GraphNetwork
from .property_starts import charge_signs, momentum_start

CHARGE_INIT = 0.1  # std of the initial learned charges
# a learned value seen in fewer training snapshots is flagged as poorly fixed (the run's summary, result.json):
# on REBOUND gravity a simulation that IQR pruning left 2 training snapshots got its mass factor 36x off
FEW_SNAPSHOTS = 10


class LearnedProperties(nn.Module):
    """One trainable value per identity for each learned property; fills node features.

    Args:
        dim: spatial dimension (the node layout).
        learned: ``"m"`` and/or ``"q"``.
        identities: number of identities.
        seed: seeds the initial charges.
    """

    def __init__(self, dim: int, learned: tuple[str, ...], identities: int, seed: int = 0):
        super().__init__()
        self.layout, self.learned, self.identities = NodeLayout(dim), tuple(learned), identities
        if "m" in learned:  # m = exp(log_ratio + log_mass[group]); "free": ratios 1, each identity its own group
            self.log_mass = nn.Parameter(torch.zeros(identities))
            self.register_buffer("log_ratio", torch.zeros(identities))
            self.register_buffer("group", torch.arange(identities))
        if "q" in learned:
            generator = torch.Generator().manual_seed(seed)
            self.charge = nn.Parameter(CHARGE_INIT * torch.randn(identities, generator=generator))

    @torch.no_grad()
    def start_from(self, data: ParticleDataset, masses: str = "ratios", charges: str = "pairs") -> None:
        """Start the masses at what momentum conservation says and the charges at the signs of the pair forces
        (:mod:`eqlgn.property_starts`).

        ``masses="ratios"`` keeps the masses' ratios within each group momentum conservation solved (a simulation,
        or every species together) and learns one factor per group; ``"free"`` learns each value on its own.
        ``charges="pairs"`` starts each charge at ``±1``; ``"random"`` leaves the random start."""
        if "q" in self.learned and charges == "pairs":
            self.charge.copy_(torch.as_tensor(charge_signs(data), dtype=self.charge.dtype))
        if "m" not in self.learned:
            return
        start, group = momentum_start(data)
        log_start = torch.as_tensor(np.log(start), dtype=self.log_mass.dtype)
        if masses == "free":
            self.log_mass.copy_(log_start)
            return
        self.log_ratio.copy_(log_start)
        self.group.copy_(torch.as_tensor(group))
        self.log_mass.zero_()

    def values(self, name: str) -> torch.Tensor:
        """The learned ``m`` (positive) or ``q`` of every identity."""
        return torch.exp(self.log_ratio + self.log_mass[self.group]) if name == "m" else self.charge

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # files written before the mass groups
        if "m" in self.learned:
            for name in ("log_ratio", "group"):
                state_dict.setdefault(prefix + name, getattr(self, name).clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, nodes: torch.Tensor) -> torch.Tensor:
        """``nodes [..., n, F]`` with identities in the learned columns -> the same with values."""
        where = {self.layout.mass: "m", self.layout.charge: "q"}
        columns = []  # out of place, so that several starts can run it under vmap (eqlgn.multistart)
        for k in range(nodes.shape[-1]):
            name = where.get(k)
            if name in self.learned:
                columns.append(self.values(name)[nodes[..., k].round().long()].to(nodes.dtype))
            else:
                columns.append(nodes[..., k])
        return torch.stack(columns, dim=-1)


class WithProperties(nn.Module):
    """A GN whose inputs' unmeasured properties are learned (a :class:`~eqlgn.models.GraphNetwork`)."""

    def __init__(self, network: GraphNetwork, properties: LearnedProperties):
        super().__init__()
        self.network, self.properties = network, properties

    @property
    def edge_model(self):
        return self.network.edge_model

    @property
    def node_model(self):
        return self.network.node_model

    @property
    def variant(self) -> str:
        return self.network.variant

    @property
    def message_dim(self) -> int:
        return self.network.message_dim

    @property
    def aggregation(self) -> str:
        return self.network.aggregation

    def edge_outputs(self, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.network.edge_outputs(self.properties(nodes))

    def forward(self, nodes: torch.Tensor) -> GNOutput:
        return self.network(self.properties(nodes))


def parameter_groups(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(the network's parameters, the learned properties') of a model (the second empty without any)."""
    if isinstance(model, WithProperties):
        return list(model.network.parameters()), list(model.properties.parameters())
    return list(model.parameters()), []


@torch.no_grad()
def fill(data: ParticleDataset, properties: LearnedProperties) -> ParticleDataset:
    """The dataset with its learned properties' values in place of identities (``meta.learned`` emptied)."""
    nodes = properties(torch.as_tensor(data.nodes, device=next(properties.parameters()).device)).cpu().numpy()
    meta = replace(data.meta, learned=[], identity=None, identities=0, species=[])
    return ParticleDataset(nodes, data.accelerations, data.sim_ids, data.times, meta)


def bake(model: GraphNetwork, *datasets: ParticleDataset) -> tuple[GraphNetwork, list[ParticleDataset]]:
    """The inner GN and the datasets filled with the learned values (unchanged for a model without them)."""
    if not isinstance(model, WithProperties):
        return model, list(datasets)
    return model.network, [fill(d, model.properties) for d in datasets]


def properties_table(model: WithProperties, data: ParticleDataset, train: ParticleDataset) -> list[dict]:
    """One row per identity of ``data`` (the whole dataset): ``identity``, where it first occurs (``sim``,
    ``particle``), its ``species`` label where the data have species, ``snapshots`` (training snapshots that
    show it; 0: never trained, its value is the initial one) and each learned value."""
    properties = model.properties
    values = {name: properties.values(name).detach().cpu().numpy() for name in properties.learned}
    first_name = properties.learned[0]  # every learned column holds the same identities
    ids = data.identities_of(first_name).astype(np.int64)
    seen = np.bincount(train.identities_of(first_name).astype(np.int64).ravel(), minlength=properties.identities)
    snapshot, particle = np.unravel_index(np.unique(ids.ravel(), return_index=True)[1], ids.shape)
    rows = []
    for identity, (s, p) in zip(np.unique(ids.ravel()), zip(snapshot, particle)):
        species = {"species": data.meta.species[identity]} if data.meta.species else {}
        rows.append({"identity": int(identity), "sim": int(data.sim_ids[s]), "particle": int(p), **species,
                     "snapshots": int(seen[identity]), **{name: float(values[name][identity])
                                                         for name in properties.learned}})
    return rows


def agreement(learned: np.ndarray, truth: np.ndarray, name: str, groups: np.ndarray | None = None,
              factors: np.ndarray | None = None) -> float:
    """R² of learned values against the truth up to what the laws leave free: masses up to one global
    factor (R² of ``log m`` after the best common shift), charges up to a factor and a sign (R² of the
    best ``q_learned ≈ a q_true``, ``a`` of either sign) — a sign per group when ``groups`` (e.g. the
    simulation of each value) is given, since flipping every charge of one simulation leaves its
    forces unchanged. ``factors`` (e.g. the simulation of each value) lets each group have its own factor:
    with masses and charges both learned, Coulomb's law fixes only ``q_i q_j / m_i``, so ``m → c m`` with
    ``q → √c q`` within one simulation changes nothing."""
    learned, truth = np.asarray(learned, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if name == "m":
        a, b = np.log(learned), np.log(truth)
        residual = _minus_group_means(a - b, factors)
        return float(1 - residual.var() / b.var())
    if groups is not None:
        truth = flipped_to(learned, truth, groups)
    if factors is None:
        scaled = truth * float(learned @ truth / (truth @ truth))
    else:
        scaled = truth.copy()
        for group in np.unique(factors):
            here = factors == group
            scaled[here] *= float(learned[here] @ truth[here] / max(truth[here] @ truth[here], 1e-300))
    return float(1 - np.sum((learned - scaled) ** 2) / np.sum((learned - learned.mean()) ** 2))


def _minus_group_means(values: np.ndarray, groups: np.ndarray | None, centre=np.mean) -> np.ndarray:
    """``values`` less their ``centre`` (mean, median) over all, or within each group."""
    if groups is None:
        return values - centre(values)
    out = values.copy()
    for group in np.unique(groups):
        here = groups == group
        out[here] -= centre(values[here])
    return out


def flipped_to(learned: np.ndarray, truth: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """The true charges with each group's sign flipped where that matches the learned ones better (the flip the
    law leaves free)."""
    truth = np.array(truth, dtype=np.float64)
    for group in np.unique(groups):
        here = groups == group
        truth[here] *= 1.0 if learned[here] @ truth[here] >= 0 else -1.0
    return truth


def signs_right(learned: np.ndarray, truth: np.ndarray, groups: np.ndarray) -> float:
    """The share of groups (e.g. simulations) whose learned charges all have the true signs, up to the one flip of
    the whole group the law leaves free (particles with true charge 0 are not counted)."""
    learned, truth, groups = np.sign(learned), np.sign(truth), np.asarray(groups)
    right = []
    for group in np.unique(groups):
        here = (groups == group) & (truth != 0)
        right.append(abs(learned[here] @ truth[here]) == here.sum())
    return float(np.mean(right))


@dataclass(frozen=True)
class MassErrors:
    """Learned masses against the true ones after the one global factor the laws leave free (one per simulation
    where charges are learned too: :meth:`of`'s ``factors``).

    ``log_r2`` is :func:`agreement` (one large error moves it a lot); the other two are per particle,
    after the median log ratio (the robust common factor): the median ``|log(m_learned / m_true)|``
    and the fraction of particles within 10 %.
    """

    log_r2: float
    median_log_error: float
    within_10_percent: float
    particles: int

    @classmethod
    def of(cls, learned: np.ndarray, truth: np.ndarray, factors: np.ndarray | None = None) -> MassErrors:
        """``factors``: a factor per group (e.g. simulation) instead of one (:func:`agreement`)."""
        learned, truth = np.asarray(learned, dtype=np.float64), np.asarray(truth, dtype=np.float64)
        if learned.shape != truth.shape or learned.size == 0 or (learned <= 0).any() or (truth <= 0).any():
            raise ValueError("masses to compare must be positive and of one shape: clip or drop the others first")
        error = np.abs(_minus_group_means(np.log(learned) - np.log(truth), factors, np.median))
        return cls(agreement(learned, truth, "m", factors=factors), float(np.median(error)),
                   float(np.mean(error <= np.log(1.1))), int(learned.size))
