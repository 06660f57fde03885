"""Learned rewards: a vision classifier of task success, trained on labelled frames.

* :mod:`~hilrl.rewards.label`: labelled frames from the sim's ground truth;
* :mod:`~hilrl.rewards.data`: labelled frames from a LeRobot dataset, the episode split;
* :mod:`~hilrl.rewards.model`: the classifier and its safetensors + JSON form;
* :mod:`~hilrl.rewards.preprocess`: the one preprocessing shared by training and inference;
* :mod:`~hilrl.rewards.train`, :mod:`~hilrl.rewards.metrics`, :mod:`~hilrl.rewards.plots`;
* :mod:`~hilrl.rewards.hook`: ``load_reward_fn(path, device)`` for ``make_env(reward_fn=...)``.

Import the submodules directly; this package imports nothing heavy.
"""
