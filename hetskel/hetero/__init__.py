"""The paper's heterogeneous-processing modules: 2D->3D lifter, skeleton prompts, semantic motion encoding."""
