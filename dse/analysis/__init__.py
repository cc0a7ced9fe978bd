"""Analysis of sweep results: EDFs, width fits, constraint refinement, plots and reports."""
