"""Kling's task callback. Thin: check the token, ask for a poll, answer.

Kling POSTs the task object to ``/webhook/kling/<token>`` on each status change. The body is
never trusted (anyone can POST anything): it only makes genbot poll the job's task now, over
its own authenticated API call, instead of at the next scheduled poll, and only when the body
does not say the task still runs (``services.poll_soon``: a poll after "submitted" or
"processing" learns nothing). The token is the job id signed with SECRET_KEY, so nobody can
make genbot poll a job of their choosing.

Answers: 404 a token that is not ours; 200 otherwise, including a job that is already finished
(Kling would call again for nothing).
"""
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from genbot.jsonbody import MalformedJSON, parse_json_body

from . import services


@csrf_exempt
@require_POST
def kling_callback(request: HttpRequest, token: str) -> HttpResponse:
    job_id = services.job_id_from_callback(token)
    if job_id is None:
        return JsonResponse({"error": "unknown task"}, status=404)
    try:
        body = parse_json_body(request.body)
    except MalformedJSON:
        body = None
    reported = body.get("task_status") if isinstance(body, dict) else None
    polled = services.poll_soon(job_id=job_id, reported_status=reported if isinstance(reported, str) else None)
    return JsonResponse({"ok": True, "polled": polled})
