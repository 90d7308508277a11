"""Bodies of the 13 workflow types; `contexten.workflows.<type value>.run(params, ctx)`."""
