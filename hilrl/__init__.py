"""hilrl: human-in-the-loop reinforcement learning for robot manipulators."""

__version__ = "0.1.0"
