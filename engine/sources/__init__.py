"""Audio sources: microphone, file, GStreamer pipeline and raw PCM, all as float32 mono 16 kHz blocks."""
from emolive.engine.sources.base import DEFAULT_BLOCK_SIZE, SAMPLE_RATE, AudioSource, AudioSourceError, SourceStats
from emolive.engine.sources.array import ArraySource
from emolive.engine.sources.factory import open_source
from emolive.engine.sources.file import FileSource
from emolive.engine.sources.gstreamer import GStreamerSource
from emolive.engine.sources.microphone import (InputDevice, MicrophoneOptions, MicrophoneSource, find_input_device,
                                               list_input_devices)
from emolive.engine.sources.pcm import RawPcmSource

__all__ = ["DEFAULT_BLOCK_SIZE", "SAMPLE_RATE", "AudioSource", "AudioSourceError", "SourceStats", "open_source",
           "ArraySource", "FileSource", "GStreamerSource", "InputDevice", "MicrophoneOptions", "MicrophoneSource",
           "find_input_device", "list_input_devices", "RawPcmSource"]
