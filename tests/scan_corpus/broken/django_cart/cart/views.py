"""Django views keeping carts in a module-level dict."""

from django.http import HttpRequest, JsonResponse

CARTS: dict[str, list[str]] = {}


def add_item(request: HttpRequest) -> JsonResponse:
    key = request.session.session_key or ""
    CARTS.setdefault(key, []).append(request.POST["sku"])
    return JsonResponse({"items": CARTS[key]})


def show_cart(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"items": CARTS.get(request.session.session_key or "", [])})
