#!/bin/sh
# The lab's "outside world": a network namespace "wan" (think: another machine on the VM's
# LAN, or the internet) joined to the VM by a veth pair. The VM's end, "uplink", plays the
# VM's own NIC with the address 203.0.113.1 (TEST-NET-3, a documentation range).
# wan has NO route to the containers' 10.0.0.0/24: replies reach them only through NAT.
set -e
# The template has LXC, whose lxc-net service makes a bridge lxcbr0 (10.0.3.1), runs dnsmasq,
# adds nftables tables "inet lxc" and "ip lxc" (with a masquerade rule) and turns on IPv4
# forwarding. Start from a clean slate: let its start finish, stop it, forwarding off.
systemctl start lxc-net.service >/dev/null 2>&1 || true
systemctl stop lxc-net.service >/dev/null 2>&1 || true
sysctl -q -w net.ipv4.ip_forward=0
ip netns add wan
ip link add uplink type veth peer name eth0 netns wan
ip addr add 203.0.113.1/24 dev uplink
ip link set uplink up
ip -n wan addr add 203.0.113.2/24 dev eth0
ip -n wan link set eth0 up
ip -n wan link set lo up
