"""Outputs for estimates: ZeroMQ publisher, JSON lines, CSV file and Lab Streaming Layer."""
from engine.sinks.base import Sink, SinkError
from engine.sinks.csv_sink import CsvSink
from engine.sinks.jsonl import JsonLinesSink
from engine.sinks.lsl import LslSink
from engine.sinks.zmq_publisher import DEFAULT_ADDRESS, ZmqPublisher

__all__ = ["Sink", "SinkError", "CsvSink", "JsonLinesSink", "LslSink", "DEFAULT_ADDRESS", "ZmqPublisher"]
