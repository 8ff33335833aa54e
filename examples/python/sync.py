"""A complete ATS sync against scorecard, in Python with grpcio.

    pip install grpcio grpcio-tools
    python3 examples/python/sync.py --addr 127.0.0.1:50051 --token "$(scorecard token --sub ats --org acme --role integration --role admin)"

Generates the stubs from proto/ into a temporary folder, then: a rubric from the
built-in "Backend Engineer" template, a job, two candidates, one interview
each, scorecards submitted with idempotency keys (and retried, to show the
retry is safe), and the calibrated ranking.
"""

import argparse
import importlib
import pathlib
import sys
import tempfile
import uuid

import grpc
from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parents[2]


def stubs():
    out = tempfile.mkdtemp(prefix="scorecard-stubs-")
    include = pathlib.Path(protoc.__file__).parent / "_proto"
    files = [str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto").rglob("*.proto")]
    code = protoc.main(["protoc", f"-I{ROOT / 'proto'}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}", *files])
    if code != 0:
        sys.exit("protoc failed")
    sys.path.insert(0, out)
    return {name: importlib.import_module(f"scorecard.v1.{name}") for name in
            ["rubric_pb2", "rubric_pb2_grpc", "hiring_pb2", "hiring_pb2_grpc", "scorecard_pb2", "scorecard_pb2_grpc",
             "calibration_pb2", "calibration_pb2_grpc", "common_pb2"]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", default="127.0.0.1:50051")
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    pb = stubs()
    channel = grpc.insecure_channel(args.addr)
    auth = [("authorization", f"Bearer {args.token}")]
    rubrics = pb["rubric_pb2_grpc"].RubricServiceStub(channel)
    hiring = pb["hiring_pb2_grpc"].HiringServiceStub(channel)
    scorecards = pb["scorecard_pb2_grpc"].ScorecardServiceStub(channel)
    calibration = pb["calibration_pb2_grpc"].CalibrationServiceStub(channel)
    h, s, c = pb["hiring_pb2"], pb["scorecard_pb2"], pb["calibration_pb2"]

    rubric = rubrics.CreateRubricFromTemplate(pb["rubric_pb2"].CreateRubricFromTemplateRequest(template="backend-engineer"), metadata=auth)
    suffix = uuid.uuid4().hex[:8]
    job = hiring.CreateJob(h.CreateJobRequest(job=h.Job(title="Backend Engineer", external_id=f"gh-{suffix}", rubric=rubric.name)), metadata=auth)
    ranked = []
    for n, (name, score) in enumerate([("Ana Lima", 4), ("Ben Osei", 2)]):
        candidate = hiring.CreateCandidate(h.CreateCandidateRequest(candidate=h.Candidate(external_id=f"ats-{suffix}-{n}", display_name=name)), metadata=auth)
        interview = hiring.CreateInterview(h.CreateInterviewRequest(interview=h.Interview(
            job=job.name, candidate=candidate.name, interviewer="ivan",
            focus_competencies=["api_design", "explaining_tradeoffs"],
            scheduled_time={"seconds": 1_795_000_000})), metadata=auth)
        request = s.SubmitScorecardRequest(
            interview=interview.name,
            ratings=[s.Rating(competency="api_design", score=score, evidence="Designed cursor pagination and explained why offsets break under concurrent inserts."),
                     s.Rating(competency="explaining_tradeoffs", score=score, evidence="Explained eventual consistency to the product manager with a bank-transfer analogy.")],
            recommendation=pb["common_pb2"].RECOMMENDATION_YES if score >= 3 else pb["common_pb2"].RECOMMENDATION_NO,
            request_id=f"ats-scorecard-{suffix}-{n}")
        first = scorecards.SubmitScorecard(request, metadata=auth)
        retry = scorecards.SubmitScorecard(request, metadata=auth)  # a network retry: same scorecard
        assert first.name == retry.name
        ranked.append(candidate.name)
    try:
        scorecards.SubmitScorecard(s.SubmitScorecardRequest(interview=interview.name), metadata=auth)
    except grpc.RpcError as e:
        print(f"bad input is refused: {e.code().name}: {e.details()}")
    ranking = calibration.GetRanking(c.GetRankingRequest(job=job.name), metadata=auth)
    for entry in ranking.entries:
        print(f"{entry.rank}. {entry.candidate} {entry.score:.2f} [{entry.score_lower:.2f}, {entry.score_upper:.2f}] raw {entry.raw_mean:.2f} {list(entry.flags)}")
    assert [e.candidate for e in ranking.entries] == ranked


if __name__ == "__main__":
    main()
