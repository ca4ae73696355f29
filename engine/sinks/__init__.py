"""Outputs for estimates: ZeroMQ publisher, JSON lines, CSV file and Lab Streaming Layer."""
from emolive.engine.sinks.base import Sink, SinkError
from emolive.engine.sinks.csv_sink import CsvSink
from emolive.engine.sinks.jsonl import JsonLinesSink
from emolive.engine.sinks.lsl import LslSink
from emolive.engine.sinks.zmq_publisher import DEFAULT_ADDRESS, ZmqPublisher

__all__ = ["Sink", "SinkError", "CsvSink", "JsonLinesSink", "LslSink", "DEFAULT_ADDRESS", "ZmqPublisher"]
