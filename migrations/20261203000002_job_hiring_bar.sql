-- A job's hiring bar on its rubric's scale (NULL: none): rankings give each
-- candidate's probability of being at or above it. Set by CreateJob and
-- UpdateJob; never read by the calibration fit itself.
alter table jobs add column hiring_bar double precision;
