"""The export layouts Contrail reads, and how their headers map to canonical columns."""

from __future__ import annotations

from dataclasses import dataclass

# Header of the public Kaggle "Invistico" airline survey export (ours too: `contrail generate`).
INVISTICO_HEADER: tuple[str, ...] = (
    "satisfaction",
    "Gender",
    "Customer Type",
    "Age",
    "Type of Travel",
    "Class",
    "Flight Distance",
    "Seat comfort",
    "Departure/Arrival time convenient",
    "Food and drink",
    "Gate location",
    "Inflight wifi service",
    "Inflight entertainment",
    "Online support",
    "Ease of Online booking",
    "On-board service",
    "Leg room service",
    "Baggage handling",
    "Checkin service",
    "Cleanliness",
    "Online boarding",
    "Departure Delay in Minutes",
    "Arrival Delay in Minutes",
)

# Header of Kaggle's "Airline Passenger Satisfaction" train.csv / test.csv.
PASSENGER_SATISFACTION_HEADER: tuple[str, ...] = (
    "",
    "id",
    "Gender",
    "Customer Type",
    "Age",
    "Type of Travel",
    "Class",
    "Flight Distance",
    "Inflight wifi service",
    "Departure/Arrival time convenient",
    "Ease of Online booking",
    "Gate location",
    "Food and drink",
    "Online boarding",
    "Seat comfort",
    "Inflight entertainment",
    "On-board service",
    "Leg room service",
    "Baggage handling",
    "Checkin service",
    "Inflight service",
    "Cleanliness",
    "Departure Delay in Minutes",
    "Arrival Delay in Minutes",
    "satisfaction",
)

# Source header -> canonical column, shared by both public layouts.
PUBLIC_HEADER_TO_CANONICAL: dict[str, str] = {
    "satisfaction": "satisfaction",
    "Gender": "gender",
    "Customer Type": "customer_type",
    "Age": "age",
    "Type of Travel": "type_of_travel",
    "Class": "travel_class",
    "Flight Distance": "flight_distance",
    "Seat comfort": "seat_comfort",
    "Departure/Arrival time convenient": "departure_arrival_time_convenient",
    "Food and drink": "food_and_drink",
    "Gate location": "gate_location",
    "Inflight wifi service": "inflight_wifi_service",
    "Inflight entertainment": "inflight_entertainment",
    "Online support": "online_support",
    "Ease of Online booking": "ease_of_online_booking",
    "On-board service": "on_board_service",
    "Leg room service": "leg_room_service",
    "Baggage handling": "baggage_handling",
    "Checkin service": "checkin_service",
    "Cleanliness": "cleanliness",
    "Online boarding": "online_boarding",
    "Inflight service": "inflight_service",
    "Departure Delay in Minutes": "departure_delay_minutes",
    "Arrival Delay in Minutes": "arrival_delay_minutes",
}


@dataclass(frozen=True)
class Layout:
    """A named export layout: its exact header and what each header column becomes."""

    name: str
    header: tuple[str, ...]
    # header column -> canonical column; columns absent here are ignored (e.g. the index).
    columns: dict[str, str]


INVISTICO = Layout(
    "invistico",
    INVISTICO_HEADER,
    {h: PUBLIC_HEADER_TO_CANONICAL[h] for h in INVISTICO_HEADER},
)
PASSENGER_SATISFACTION = Layout(
    "passenger-satisfaction",
    PASSENGER_SATISFACTION_HEADER,
    {h: PUBLIC_HEADER_TO_CANONICAL[h] for h in PASSENGER_SATISFACTION_HEADER if h not in ("", "id")},
)
PUBLIC_LAYOUTS: dict[str, Layout] = {
    layout.name: layout for layout in (INVISTICO, PASSENGER_SATISFACTION)
}
