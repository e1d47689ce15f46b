"""Domain values of cohort-scheduler: frozen, validated, free of I/O."""
