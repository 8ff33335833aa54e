-- Whether a rating's evidence is thin (calibration::raters::evidence_is_thin),
-- kept with the rating when it is written (1 thin, 0 not), so that loading an
-- organisation for calibration need not read every rating's evidence text.
-- NULL for ratings written before this column: the load reads their evidence
-- and judges it as before. A change to the rule must set it back to NULL.
alter table ratings add column thin smallint check (thin in (0, 1));
