"""cosearch's own tables, beside Optuna's untouched RDB schema (DESIGN.md section 5).

Rows that describe a trial reference Optuna's ``trials.trial_id`` with ON DELETE CASCADE, so
on PostgreSQL deleting a study through Optuna leaves no orphans. SQLite enforces foreign keys
only on connections that ask for it: cosearch's do, Optuna's own (``optuna delete-study``, the
dashboard) do not, so there such a delete leaves these rows and the ``campaigns`` row behind;
``cosearch delete NAME --yes`` (``Store.delete_campaign``) removes them. Nothing here is
pickled: configs and genotypes are JSON, ONNX and tensors are bytes in their own formats.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# Optuna owns this table; it is declared here only so foreign keys can point at it and the
# cosearch_ indexes below can name its columns. cosearch never creates or alters it.
optuna_trials = sa.Table(
    "trials",
    metadata,
    sa.Column("trial_id", sa.Integer, primary_key=True),
    sa.Column("study_id", sa.Integer),
    sa.Column("number", sa.Integer),
    sa.Column("state", sa.String(8)),
)

schema_version = sa.Table(
    "cosearch_schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", sa.DateTime, nullable=False),
)

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("campaign_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("study_name", sa.String(512), nullable=False),
    sa.Column("config_toml", sa.Text, nullable=False),
    sa.Column("config_json", sa.Text, nullable=False),
    sa.Column("versions_json", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

architectures = sa.Table(
    "architectures",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("space", sa.String(64), nullable=False),
    sa.Column("genotype_json", sa.Text, nullable=False),
    # structure-only ONNX: weights are graph inputs with shapes, no data (a few KB)
    sa.Column("onnx", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

accelerators = sa.Table(
    "accelerators",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("template", sa.String(64), nullable=False),
    sa.Column("config_json", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

evaluations = sa.Table(
    "evaluations",
    metadata,
    sa.Column(
        "trial_id",
        sa.Integer,
        sa.ForeignKey("trials.trial_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "campaign_id",
        sa.Integer,
        sa.ForeignKey("campaigns.campaign_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column(
        "architecture_digest", sa.String(64), sa.ForeignKey("architectures.digest"), nullable=False
    ),
    sa.Column(
        "accelerator_digest", sa.String(64), sa.ForeignKey("accelerators.digest"), nullable=False
    ),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

measurements = sa.Table(
    "measurements",
    metadata,
    sa.Column("measurement_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "trial_id",
        sa.Integer,
        sa.ForeignKey("evaluations.trial_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("metric", sa.String(64), nullable=False, index=True),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("source", sa.String(256), nullable=False),
    sa.Column("fidelity", sa.Float, nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.UniqueConstraint("trial_id", "metric", "source", name="uq_measurement"),
)

layer_costs = sa.Table(
    "layer_costs",
    metadata,
    sa.Column("model", sa.String(64), primary_key=True),
    sa.Column("model_version", sa.String(32), primary_key=True),
    sa.Column("layer_digest", sa.String(64), primary_key=True),
    sa.Column("accelerator_digest", sa.String(64), primary_key=True),
    sa.Column("layer_json", sa.Text, nullable=False),
    sa.Column("cost_json", sa.Text, nullable=False),
)

checkpoints = sa.Table(
    "checkpoints",
    metadata,
    sa.Column("checkpoint_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "campaign_id",
        sa.Integer,
        sa.ForeignKey("campaigns.campaign_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("strategy", sa.String(64), nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("meta_json", sa.Text, nullable=False),
    # torch.save of tensors only; read back with torch.load(weights_only=True)
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("campaign_id", "strategy", "step", name="uq_checkpoint"),
)

predictors = sa.Table(
    "predictors",
    metadata,
    sa.Column("predictor_id", sa.String(128), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("version", sa.String(32), nullable=False),
    sa.Column("training_ref", sa.Text, nullable=False),
    sa.Column("params_json", sa.Text, nullable=False),
    sa.Column("scores_json", sa.Text, nullable=False),
    sa.Column("weights", sa.LargeBinary, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

# one row per RUNNING trial's worker; beat_at uses the database's clock, so workers on
# machines with skewed clocks still agree on staleness
heartbeats = sa.Table(
    "heartbeats",
    metadata,
    sa.Column(
        "trial_id",
        sa.Integer,
        sa.ForeignKey("trials.trial_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("worker", sa.String(256), nullable=False),
    sa.Column("beat_at", sa.DateTime, nullable=False, server_default=sa.func.current_timestamp()),
)

# -- indexes added by migration 3 (store/migrations.py), for the queries of store/queries.py
# and the store's own deletes at 100,000 trials (plans in benchmarks/results/store.md) --------

# Store._collect_garbage deletes architectures / accelerators no evaluation references, and
# every such delete checks the evaluations foreign keys: without these, one full scan of
# evaluations per architecture (or accelerator), O(trials^2) at scale.
ix_evaluations_architecture = sa.Index(
    "ix_evaluations_architecture_digest", evaluations.c.architecture_digest
)
ix_evaluations_accelerator = sa.Index(
    "ix_evaluations_accelerator_digest", evaluations.c.accelerator_digest
)

# On Optuna's own ``trials`` table, named ``cosearch_*`` so they are recognisably ours. They add
# no column and change no constraint, and Optuna's alembic check reads only alembic_version.
#  - (study_id, state): trial counts by state (`cosearch status`) and the COMPLETE-trial scans
#    of the Pareto query become index-only, instead of reading every trial row of the study;
#  - (study_id, number): Optuna's get_trial_id_from_study_id_trial_number (worker claims,
#    `cosearch show`) seeks one entry instead of scanning the study's entries.
ix_trials_study_state = sa.Index(
    "cosearch_ix_trials_study_state", optuna_trials.c.study_id, optuna_trials.c.state
)
ix_trials_study_number = sa.Index(
    "cosearch_ix_trials_study_number", optuna_trials.c.study_id, optuna_trials.c.number
)

#: indexes created by migration 3, in order
V3_INDEXES = (
    ix_evaluations_architecture,
    ix_evaluations_accelerator,
    ix_trials_study_state,
    ix_trials_study_number,
)

#: the tables cosearch creates (Optuna's ``trials`` is not among them)
OWN_TABLES = (
    schema_version,
    campaigns,
    architectures,
    accelerators,
    evaluations,
    measurements,
    layer_costs,
    checkpoints,
    predictors,
    heartbeats,
)
