"""Reports of simulation results: figures of sweep tables (`plots`)."""
