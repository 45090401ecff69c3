from django.http import HttpRequest, JsonResponse

rooms: dict[str, list[str]] = {}


class Rooms:
    def post(self, request: HttpRequest, room: str) -> JsonResponse:
        rooms.setdefault(room, []).append(request.POST["member"])
        return JsonResponse({"members": rooms[room]})
