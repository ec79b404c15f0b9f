"""Total cost of ownership: the money model (:func:`ownership`, :class:`TcoInputs`, sourced
defaults in ``tco.toml``) and fleets sized at an SLO and priced (:func:`tco`)."""

from explore.tco.fleet import (
    FleetResult,
    Scenario,
    contract,
    load_tco_scenario,
    tco,
    to_dataframe,
)
from explore.tco.inputs import TcoInputs, default_inputs, ownership, usd_per_m_tokens

__all__ = [
    "FleetResult",
    "Scenario",
    "TcoInputs",
    "contract",
    "default_inputs",
    "load_tco_scenario",
    "ownership",
    "tco",
    "to_dataframe",
    "usd_per_m_tokens",
]
