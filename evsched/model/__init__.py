"""The multi-period DistFlow model with second-order cone relaxation (layered builder).

* :mod:`evsched.model.devices` — what can be controlled (DeviceGroup, StorageGroup)
* :mod:`evsched.model.constraints` — one function per constraint family
* :mod:`evsched.model.builder` — OPFModel: variables + families + objective, solve/update
* :mod:`evsched.model.result` — OPFResult: tidy frames and the relaxation gap
* :mod:`evsched.model.diagnose` — which family/hour/bus makes a model infeasible

How to add a constraint family (worked example: the line thermal limit)
------------------------------------------------------------------------
:func:`~evsched.model.constraints.branch_current_limits` was added in four steps; a new
family follows the same ones.

1. **The family**: one vectorised function ``f(m) -> list of cvxpy constraints`` over the
   (element × hour) variable matrices (``m.P``, ``m.Q``, ``m.l``, ``m.v``, device variables),
   with its equation in the docstring::

       def branch_current_limits(m):
           r\"\"\"ℓ_{k,t} ≤ (I_max,k / I_base)² on every rated branch k and hour t.\"\"\"
           return [m.l[rated_branches(m)] <= m.data("branch.l_max")]

2. **Its data through** ``m.data(name)``, never as a Python constant: then the ``parametric``
   build makes it a ``cp.Parameter``, the ``rhs`` build puts it in the verified data → b map
   (a re-solve with other ratings rewrites the right-hand side only, :mod:`~evsched.model.rhs`)
   and :meth:`OPFModel.update` can change it. The values come from
   :meth:`OPFModel._data_values` (here ``branch.l_max`` = (``branch_rating_a`` / I_base)², in
   p.u.², added when the family is in the model; the ratings are a constructor/``update``
   argument defaulting to the network's ``rating_a``). A custom family without a builder hook
   passes its arrays as ``extra_data``.

3. **An elastic form** for the diagnosis: the same limit relaxed by non-negative slacks that
   name the elements, registered in :data:`~evsched.model.constraints.ELASTIC` (or declared
   with :func:`~evsched.model.constraints.elastic_form` for a custom family)::

       def elastic_branch_current_limits(m, slacks):
           return [relax_upper(slacks, "branch_current_limits (upper, ℓ ≤ I_max²)",
                               labels_of_rated_branches, "branch", m.l[rated], m.data("branch.l_max"))]

   An infeasible model then says *"branch_current_limits (upper, ℓ ≤ I_max²) binds at hour(s)
   [1] for 1 branch(s), worst first ['1-2']"*.

4. **Select it**: ``OPFModel(..., families=thermal_families())`` (the defaults plus the
   family; :data:`~evsched.model.constraints.OPTIONAL` lists the optional ones), or from the
   run parameters (``thermal_limits: true`` → :meth:`evsched.schema.OPFOptions.model_kwargs`).
   Tests: a closed-form optimum on two buses, a re-solve with new data equal to a fresh
   constant build, the diagnosis naming the element (``tests/test_thermal.py``).
"""
from evsched.model.builder import OPFModel
from evsched.model.devices import DeviceGroup, StorageGroup
from evsched.model.result import OPFResult

__all__ = ["OPFModel", "DeviceGroup", "StorageGroup", "OPFResult"]
