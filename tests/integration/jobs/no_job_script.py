"""Connects but submits nothing."""
import jetmq

print(jetmq.bootstrapped_instance().cluster().size)
