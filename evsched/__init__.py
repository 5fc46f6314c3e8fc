"""evsched: scheduled EV charging/discharging with coordinated active and reactive power.

A thin helper package behind the notebooks: network data access (:mod:`evsched.network`),
an exact AC power flow for checking (:mod:`evsched.powerflow`), and the multi-period
DistFlow second-order-cone model (:mod:`evsched.model`).
"""
from evsched.errors import EvschedError, InputError, NetworkDataError, OptimisationError
from evsched.network import Network, from_pandapower, load_ieee33

__all__ = [
    "EvschedError", "InputError", "NetworkDataError", "OptimisationError",
    "Network", "load_ieee33", "from_pandapower",
]
__version__ = "0.1.0"
