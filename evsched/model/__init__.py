"""The multi-period DistFlow model with second-order cone relaxation (layered builder).

* :mod:`evsched.model.devices` — what can be controlled (DeviceGroup, StorageGroup)
* :mod:`evsched.model.constraints` — one function per constraint family
* :mod:`evsched.model.builder` — OPFModel: variables + families + objective, solve/update
* :mod:`evsched.model.result` — OPFResult: tidy frames and the relaxation gap
* :mod:`evsched.model.diagnose` — which family/hour/bus makes a model infeasible
"""
from evsched.model.builder import OPFModel
from evsched.model.devices import DeviceGroup, StorageGroup
from evsched.model.result import OPFResult

__all__ = ["OPFModel", "DeviceGroup", "StorageGroup", "OPFResult"]
