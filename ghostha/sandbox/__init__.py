"""A local AWS for trying and testing ghostha: moto's server plus the ECS and ELBv2 behaviour moto lacks.

moto answers the AWS API but runs nothing: no ECS agent, no service scheduler, no dynamic host ports, no target
registration or health. This package adds exactly those, as a simulation acting on moto's own backends, and puts
a guard in front of moto's HTTP app for the checks AWS makes and moto does not. ghostha's product code never
knows: it reaches the sandbox through an endpoint URL like any AWS endpoint.

Needs the `sandbox` extra (moto[server]); importing it without moto raises a clear error.
"""
