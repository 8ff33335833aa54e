-- A page of one job's or one interviewer's interviews walks these in id order
-- and stops after the page, as for scorecards (20261201000001).
drop index interviews_job_idx;
drop index interviews_interviewer_idx;
create index interviews_job_idx on interviews (org_id, job_id, id);
create index interviews_interviewer_idx on interviews (org_id, interviewer, id);
