"""Campaign measurement: the lift of each audience's treatment over its holdout, per segment (`lift`),
and the page that shows it (`page`); `stage` runs the lift job."""
