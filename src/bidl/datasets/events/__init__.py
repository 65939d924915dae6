"""Event-camera data: file formats, event-to-frame integration, denoising, the camera model."""

from .camera import EventCamera, Events
from .denoise import denoise
from .formats import (
    EVENT_DTYPE,
    EventFileError,
    iter_event_file,
    make_events,
    read_event_file,
    sensor_size_of,
)
from .frames import events_to_frames, events_to_frames_batch
from .integration import EventIntegration

__all__ = [
    "EVENT_DTYPE",
    "EventCamera",
    "EventFileError",
    "EventIntegration",
    "Events",
    "denoise",
    "events_to_frames",
    "events_to_frames_batch",
    "iter_event_file",
    "make_events",
    "read_event_file",
    "sensor_size_of",
]
