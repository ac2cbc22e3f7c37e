"""The MuJoCo simulation: workspace scene, controllers, cameras, tasks and the scripted expert."""
