"""search_spaces: sets of ArchSpecs (grids, paper spaces, equal-FLOP matching, scaling strategies)."""
