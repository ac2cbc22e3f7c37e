"""Action chunks and their decoding: action spaces, tokenizers (OpenVLA, RT-1, RT-2, FAST), gripper, ee targets."""
