"""tinyaudio.benchmarks"""
