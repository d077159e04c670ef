"""The story's starting point, created through the AWS API like any user's account.

A VPC with two subnets in two AZs; an ALB security group (80 from anywhere); an instance security group that
admits only port 80 from the ALB's group; ALB `ghost-elb` with an HTTP:80 listener forwarding to `ghost-tg`
(HTTP, type instance); instance profile `ecsInstanceRole` (its role trusting EC2, with
AmazonEC2ContainerServiceforEC2Role); and task family `ghost` whose latest revision maps
container port 2368 to host port 80 (image ghost:5, 512 MiB reserved, `url` set to the ALB's address).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

STACK = "ghost-ha"
ECS_INSTANCE_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"


@dataclass(frozen=True)
class Seeded:
    region: str
    vpc_id: str
    subnets: tuple[str, str]
    azs: tuple[str, str]
    alb_sg: str
    instance_sg: str
    alb_arn: str
    alb_dns: str
    target_group_arn: str
    listener_arn: str
    instance_profile: str
    task_definition_arn: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def config(self, endpoint_url: str, poll_seconds: float | None = None) -> dict[str, Any]:
        """A ghostha config for the seeded stack (without `poll_seconds`, the sandbox advises it: advice.py)."""
        runtime: dict[str, Any] = {} if poll_seconds is None else {"poll_seconds": poll_seconds}
        return {
            "stack": STACK,
            "region": self.region,
            "endpoint_url": endpoint_url,
            **runtime,
            "network": {"subnets": list(self.subnets), "security_group": self.instance_sg},
            "cluster": {
                "name": STACK,
                "instance_count": 2,
                "instance_type": "t3.small",
                "instance_profile": self.instance_profile,
            },
            "task": {"family": "ghost", "container": "ghost", "container_port": 2368},
            "service": {"name": "ghost", "desired_count": 6},
            "load_balancer": {"name": "ghost-elb", "target_group": "ghost-tg"},
        }


def ghost_container(url: str, host_port: int | None = 80) -> dict[str, Any]:
    mapping: dict[str, Any] = {"containerPort": 2368, "protocol": "tcp"}
    if host_port is not None:
        mapping["hostPort"] = host_port
    return {
        "name": "ghost",
        "image": "ghost:5",
        "essential": True,
        "memory": 1024,
        "memoryReservation": 512,
        "portMappings": [mapping],
        "environment": [{"name": "url", "value": url}, {"name": "NODE_ENV", "value": "production"}],
    }


def seed(client: Any, region: str = "us-east-1") -> Seeded:
    """Create the story's starting point. `client(name)` returns a boto3 client for the sandbox."""
    ec2 = client("ec2")
    elbv2 = client("elbv2")
    iam = client("iam")
    ecs = client("ecs")
    azs = (f"{region}a", f"{region}b")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "Name", "Value": "ghost-vpc"}])
    subnets = []
    for i, az in enumerate(azs):
        sn = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i + 1}.0/24", AvailabilityZone=az)["Subnet"]["SubnetId"]
        ec2.create_tags(Resources=[sn], Tags=[{"Key": "Name", "Value": f"ghost-public-{az[-1]}"}])
        subnets.append(sn)
    alb_sg = ec2.create_security_group(GroupName="ghost-alb", Description="ghost ALB", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=alb_sg,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    inst_sg = ec2.create_security_group(GroupName="ghost-instances", Description="ghost ECS instances", VpcId=vpc)[
        "GroupId"
    ]
    ec2.authorize_security_group_ingress(
        GroupId=inst_sg,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": alb_sg}]}],
    )
    lb = elbv2.create_load_balancer(
        Name="ghost-elb",
        Subnets=subnets,
        SecurityGroups=[alb_sg],
        Scheme="internet-facing",
        Type="application",
    )["LoadBalancers"][0]
    tg = elbv2.create_target_group(
        Name="ghost-tg",
        Protocol="HTTP",
        Port=80,
        VpcId=vpc,
        TargetType="instance",
        HealthCheckProtocol="HTTP",
        HealthCheckPort="traffic-port",
        HealthCheckPath="/ghost/api/admin/site/",
        HealthCheckIntervalSeconds=10,
        HealthyThresholdCount=2,
        UnhealthyThresholdCount=2,
        Matcher={"HttpCode": "200-399"},
    )["TargetGroups"][0]
    listener = elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}],
    )["Listeners"][0]
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    iam.create_role(RoleName="ecsInstanceRole", AssumeRolePolicyDocument=json.dumps(trust))
    iam.attach_role_policy(RoleName="ecsInstanceRole", PolicyArn=ECS_INSTANCE_POLICY)
    iam.create_instance_profile(InstanceProfileName="ecsInstanceRole")
    iam.add_role_to_instance_profile(InstanceProfileName="ecsInstanceRole", RoleName="ecsInstanceRole")
    url = f"http://{lb['DNSName']}"
    td = ecs.register_task_definition(
        family="ghost",
        networkMode="bridge",
        requiresCompatibilities=["EC2"],
        containerDefinitions=[ghost_container(url)],
    )["taskDefinition"]["taskDefinitionArn"]
    return Seeded(
        region=region,
        vpc_id=vpc,
        subnets=(subnets[0], subnets[1]),
        azs=azs,
        alb_sg=alb_sg,
        instance_sg=inst_sg,
        alb_arn=lb["LoadBalancerArn"],
        alb_dns=lb["DNSName"],
        target_group_arn=tg["TargetGroupArn"],
        listener_arn=listener["ListenerArn"],
        instance_profile="ecsInstanceRole",
        task_definition_arn=td,
    )
