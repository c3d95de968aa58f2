"""airisk: assess and control the risk of AI systems.

Public entry points live in the sub-packages: ``airisk.taxonomy`` (hazards and crosswalks),
``airisk.datasets`` (prompt sets), ``airisk.systems`` (systems under test), ``airisk.engine``
(resumable async runs), ``airisk.store`` (SQLAlchemy persistence), ``airisk.judges``,
``airisk.scoring``, ``airisk.reports``, ``airisk.guard``, ``airisk.attacks`` and ``airisk.agents``.
"""

__version__ = "0.1.0"
