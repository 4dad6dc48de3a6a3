"""Model construction: the GN (or Hamiltonian GN) that a :class:`~eqlgn.config.TrainConfig` describes.

The one place where config sections become modules: :func:`edge_model` builds the edge
model (MLP or EQL) of any output width, :func:`build_model` the whole network.
"""

from __future__ import annotations

import torch

from .config import EQLEdgeConfig, NetworkConfig, TrainConfig
from .features import default_relative_inputs
from .models import EdgeModel, EQLEdge, GraphNetwork, MLPEdge, RelativeMLPEdge, build_gn, message_dim_for


def edge_model(network: NetworkConfig, node_features: int, dim: int, out_features: int) -> EdgeModel:
    """The configured edge model with ``out_features`` outputs."""
    edge = network.edge
    if isinstance(edge, EQLEdgeConfig):
        units = {"identity": edge.identity, "product": edge.product}
        return EQLEdge(edge.inputs or default_relative_inputs(dim, network.kind), dim, out_features, edge.layers, units,
                       edge.init, edge.r_min, skip=edge.skip)
    if edge.inputs == "sender":
        return RelativeMLPEdge(default_relative_inputs(dim), dim, out_features, edge.hidden, edge.layers)
    return MLPEdge(node_features, out_features, edge.hidden, edge.layers)


def build_model(config: TrainConfig, node_features: int, dim: int, learned: tuple[str, ...] = (),
                identities: int = 0) -> GraphNetwork:
    """The network a config describes (weights initialised from ``config.seed``):
    a :class:`~eqlgn.models.GN`, or a :class:`~eqlgn.hamiltonian.HamiltonianGN` for ``kind="hamiltonian"``;
    wrapped in :class:`~eqlgn.properties.WithProperties` when the data leave properties to learn
    (``learned``, over ``identities`` particles or species)."""
    network = _network(config, node_features, dim)
    if not learned:
        return network
    from .properties import LearnedProperties, WithProperties

    return WithProperties(network, LearnedProperties(dim, tuple(learned), identities, config.seed))


def _network(config: TrainConfig, node_features: int, dim: int) -> GraphNetwork:
    torch.manual_seed(config.seed)
    network = config.network
    if network.kind == "hamiltonian":
        from .hamiltonian import HamiltonianGN, KineticEnergy

        edge = edge_model(network, node_features, dim, 1)
        return HamiltonianGN(edge, dim, KineticEnergy(dim, network.node.hidden, network.node.layers))
    width = message_dim_for(network.variant, dim, network.message_dim or 100)
    edge = edge_model(network, node_features, dim, width * (2 if network.variant == "kl" else 1))
    return build_gn(node_features, dim, network.variant, width, network.node.hidden, network.node.layers,
                    network.aggregation, edge=edge)
