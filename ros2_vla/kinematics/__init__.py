"""Arm kinematics from a `ChainSpec`: forward kinematics and Jacobians with pinocchio, from a generated URDF."""
