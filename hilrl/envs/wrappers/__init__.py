"""The wrappers :func:`hilrl.envs.make_env` stacks, one small module each."""

from hilrl.envs.wrappers.ee_delta import EEDeltaAction
from hilrl.envs.wrappers.ee_pose import EEPoseObservation, normalize_position
from hilrl.envs.wrappers.gripper import GripperAction
from hilrl.envs.wrappers.images import ImageCropResize, Resizer
from hilrl.envs.wrappers.intervention import InterventionWrapper
from hilrl.envs.wrappers.joint_action import JointAction
from hilrl.envs.wrappers.joint_mask import JointMaskWrapper
from hilrl.envs.wrappers.object_state import ObjectStateObservation
from hilrl.envs.wrappers.policy_format import PolicyObservation
from hilrl.envs.wrappers.reset_pose import ResetPoseWrapper
from hilrl.envs.wrappers.reward_model import RewardModelWrapper
from hilrl.envs.wrappers.state_features import JointStateFeatures

__all__ = [
    "EEDeltaAction",
    "EEPoseObservation",
    "GripperAction",
    "ImageCropResize",
    "InterventionWrapper",
    "JointAction",
    "JointMaskWrapper",
    "JointStateFeatures",
    "ObjectStateObservation",
    "PolicyObservation",
    "ResetPoseWrapper",
    "Resizer",
    "RewardModelWrapper",
    "normalize_position",
]
