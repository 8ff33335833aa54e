-- A page of one job's or one interviewer's scorecards walks these in id order
-- and stops after the page. The indexes they replace, on (org_id, job_id) and
-- (org_id, interviewer), made every page read and sort all of that job's or
-- interviewer's scorecards.
drop index scorecards_job_idx;
drop index scorecards_interviewer_idx;
create index scorecards_job_idx on scorecards (org_id, job_id, id);
create index scorecards_interviewer_idx on scorecards (org_id, interviewer, id);
