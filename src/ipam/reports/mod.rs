//! Read-only figures over the address plan: free addresses of a subnet and
//! utilization per pool and subnet.

pub mod service;
