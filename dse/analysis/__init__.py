"""Analysis of sweep results: it reads results tables (dse.results) and the spaces' rules, and trains nothing.

One module per job, each named after what it computes (import the module, then call its functions):
table (load_runs, finished, median, best, block_widths, spearman), edf (edfs, edf_band, ks, summary),
compare (compare, verdict_lines, format_verdicts, compare_arms), noise (noise, per_model), fit (fit, fit_many,
fit_results, fit_summary), refine (refine, refine_path), rank (epoch_rank), fixres and progressive (the paired
summaries of those claims), claims (lines, figures), plots (edf_figure, params_figure, widths_figure, fits_figure,
curves_figure, save: matplotlib Figures) and report (report, write_report: one HTML file).

Layer: above dse.space, below dse.train and dse.run (dse run writes the report, dse status the medians).
Importing it imports none of its modules (pandas, scipy and matplotlib load with the one you use)."""

__all__ = ["claims", "compare", "edf", "fit", "fixres", "noise", "plots", "progressive", "rank", "refine", "report",
           "table"]
