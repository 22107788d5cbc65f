"""convlab's Optuna sweeper for Hydra: a persistent study that several processes can share, trials
named by their study-wide number, and pruning fed by each job's per-epoch validation metric.

Hydra imports every module here at every start (``--help`` included), so only ``_impl`` (which
Hydra's scan skips) imports Optuna, when a sweep starts or a job looks up its trial.
"""
