use supervisor::supervise;

supervise! {
    pub struct Services;
    daemon "web-1" = "web --port 8001";
    daemon web_1 = "web --port 8002";
    group storage_cache {} { daemon redis = "redis-server"; }
    group storage {} {
        group cache {} { daemon memcached = "memcached"; }
    }
}

fn main() {
    let _ = Services::start;
}
