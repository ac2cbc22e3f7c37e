"""The MuJoCo simulation: workspace scene, controllers, cameras, tasks, the scripted expert and in-process episodes."""
