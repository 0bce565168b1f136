from django.http import HttpRequest, HttpResponse


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ebike-registry")


def certificate(request: HttpRequest, vehicle_id: int) -> HttpResponse:
    return HttpResponse(str(vehicle_id))
