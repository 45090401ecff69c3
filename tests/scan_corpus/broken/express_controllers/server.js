const express = require("express");
const ctrl = require("./controllers/sessions");

const app = express();
app.use(express.json());

app.post("/s/:id", ctrl.create);
app.get("/s/:id", ctrl.show);

app.listen(3000);
