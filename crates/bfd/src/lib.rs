pub mod packet;
pub mod session;
