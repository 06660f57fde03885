"""Gymnasium environments over robots, the wrapper stack, and the safety layer.

``make_env(cfg)`` builds everything; ``register_envs()`` registers the sim tasks with
gymnasium. Importing this package loads neither MuJoCo nor any robot driver.
"""

from hilrl.envs.factory import make_env
from hilrl.envs.registration import TASK_IDS, make_task_env, register_envs
from hilrl.envs.robot_env import RewardFn, RobotEnv
from hilrl.envs.safety import SafetyLayer, SafetyResult, SafetyWrapper

__all__ = [
    "TASK_IDS",
    "RewardFn",
    "RobotEnv",
    "SafetyLayer",
    "SafetyResult",
    "SafetyWrapper",
    "make_env",
    "make_task_env",
    "register_envs",
]
